"""What crosses module boundaries: portable values, function summaries and call bindings.

A module hands the modules it calls what it passes them (**bindings**: a project function's
parameters, each with its values per configuration of the caller), and takes from them what
calling them does (**summaries**: the precision of the object a function returns, the
process-wide switches it runs and the constants it returns, as conditions over its
parameters). Both are plain JSON, part of the project facts (:mod:`amplint.project`) and of
a module's cache key through its context.

Portable forms (JSON lists):

* option: ``[key, shown, kind, default, choices, sets, test, free]``;
* condition: a list of terms, each a list of ``[option, inside, values]``;
* value: ``["const", v]``, ``["dtype", name]``, ``["opt", option]``, ``["obj", kind, facts,
  enabled]`` (an object: what it was built by, its precision facts, where a GradScaler is
  enabled), ``["ns", [[dest, option], ...], open]`` (an argparse namespace; open: absl's
  ``flags.FLAGS``, every attribute a flag), and, until the project pass resolves them,
  ``["param", function, name]`` (what the caller's own caller passes; ``name.attribute`` for
  an attribute of it) and ``["result", target, arguments, facts, built, element]`` (what a
  project function returns, or the element of the tuple it returns, with what the caller then
  did to it: ``model.cast("float16")``);
* cases: ``[[condition, value], ...]``;
* fact: ``[condition, dtype, how, framework, why]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from amplint.conditions import ALWAYS, NEVER, Condition, Limit, Option, limit

Json = Any


def option_json(option: Option) -> Json:
    return [
        option.key,
        option.shown,
        option.kind,
        option.default,
        list(option.choices) if option.choices is not None else None,
        option.sets,
        option.test,
        option.free,
    ]


def option_from(data: Json) -> Option:
    key, shown, kind, default, choices, sets, test, free = data
    return Option(
        key, shown, kind, default, tuple(choices) if choices is not None else None, sets, test, free
    )


def condition_json(condition: Condition) -> Json:
    return [
        [[option_json(lim.option), lim.inside, sorted(lim.values, key=repr)] for lim in term]
        for term in condition
    ]


def condition_from(data: Json) -> Condition:
    terms = []
    for term in data:
        terms.append(
            tuple(
                sorted(
                    (Limit(option_from(o), inside, frozenset(v)) for o, inside, v in term),
                    key=lambda lim: lim.option.key,
                )
            )
        )
    return Condition.of(terms)


def fact_json(fact) -> Json:
    return [condition_json(fact.condition), fact.dtype, fact.how, fact.framework, fact.why]


def fact_from(data: Json):
    from amplint.precision import Reduced

    condition, dtype, how, framework, why = data
    return Reduced(condition_from(condition), dtype, how, why, None, framework, passed=True)


@dataclass(frozen=True)
class Summary:
    """What calling a project function or method does, over its parameters (free options
    named by the parameter, or by a parameter and its attribute: ``flags_obj.dtype``): the
    precision of the object it returns, the process-wide switches it runs, and the constant or
    dtype it returns (``DTYPE_MAP[flags_obj.dtype]``: ``float16`` where ``flags_obj.dtype`` is
    ``fp16``). A method's facts may also be over its class's constructor parameters (what
    ``__init__`` stores in ``self``), bound from the call that built the object."""

    params: tuple[str, ...]  # filled by position, ``self`` left out
    defaults: dict[str, Json] = field(default_factory=dict)  # option key -> portable cases
    returns: tuple[Json, ...] = ()  # facts
    process: tuple[Json, ...] = ()  # facts
    values: tuple[Json, ...] = ()  # portable cases
    where: str = ""  # the function's path: "build", "Builder.model"
    init: tuple[str, ...] = ()  # a method's: the constructor's parameters filled by position
    attribute: bool = False  # a property: read as ``obj.name``, not called
    parts: tuple[tuple[Json, ...], ...] = ()  # facts of each element of a returned tuple

    def facts(self, element: int | None) -> tuple[Json, ...]:
        """The facts of the returned object, or of one element of the returned tuple (of a
        function returning no tuple it builds: the whole result, ``model, opt = setup()``)."""
        if element is None or not self.parts:
            return self.returns
        return self.parts[element] if element < len(self.parts) else ()

    def key(self, name: str, constructor: bool = False) -> str:
        """The free option a parameter is in the facts (see amplint.options.free)."""
        if constructor:
            return f"~{self.where.rpartition('.')[0]}.__init__:{name}"
        return f"~{self.where}:{name}"

    def bind(
        self,
        passed: Callable[[int, str], list | None],
        built: Callable[[int, str], list | None] | None = None,
    ) -> dict[str, list]:
        """The cases each parameter takes, by option key: what the call passes (``passed``:
        by position and name), for constructor parameters what the call that built the object
        passed (``built``), else the default."""
        bound: dict[str, list] = {}
        sides = [(self.params, passed, False)]
        if built is not None:
            sides.append((self.init, built, True))
        for params, given, constructor in sides:
            for position, name in enumerate(params):
                key = self.key(name, constructor)
                cases = given(position, name)
                if cases:
                    bound[key] = cases
                elif key in self.defaults:
                    bound[key] = values_from(self.defaults[key])
        return bound

    def returned(self, bound: dict[str, list], condition: Condition = ALWAYS) -> list:
        """The values it returns, as (Condition, portable value), its parameters bound to what
        a call passes (see :func:`substitute`)."""
        found = []
        for data, value in self.values:
            held = substitute(condition_from(data), bound) & condition
            if held.possible:
                found.append((held, value))
        return found

    def to_json(self) -> Json:
        return [
            *(list(self.params), self.defaults, list(self.returns), list(self.process)),
            *(list(self.values), self.where, list(self.init), self.attribute),
            [list(part) for part in self.parts],
        ]

    @classmethod
    def from_json(cls, data: Json) -> Summary:
        params, defaults, returns, process, values, where, init, attribute, parts = data
        return cls(
            *(tuple(params), dict(defaults), tuple(returns), tuple(process)),
            *(tuple(values), where, tuple(init), attribute),
            tuple(tuple(part) for part in parts),
        )


def substitute(
    condition: Condition,
    bound: dict[str, list[tuple[Condition, Any]]],
    kept: Callable[[Option], bool] = lambda option: False,
) -> Condition:
    """``condition`` with each free option (a parameter, by its key) replaced by what the call
    passes: a constant keeps the terms it satisfies, an option the caller reads takes its
    place (also a parameter of the caller that is ``kept``: the caller is being summarised
    itself), an object is a value that is not None, the attribute of a namespace is its
    option; a parameter nothing is known of makes its terms impossible (never a finding)."""
    from amplint.cases import Namespace, Symbol

    result = NEVER
    for term in condition:
        fixed = ALWAYS
        for lim in term:
            if not lim.option.free:
                fixed = fixed & Condition(frozenset({(lim,)}))
                continue
            holds = NEVER
            prefix, _, rest = lim.option.key.partition(":")
            parameter, _, attribute = rest.partition(".")  # ``flags_obj.dtype``
            for case_condition, value in bound.get(f"{prefix}:{parameter}", []):
                if attribute:  # the option the namespace passed holds
                    option = value.option(attribute) if isinstance(value, Namespace) else None
                    if option is not None:
                        holds = holds | (case_condition & limit(option, lim.values, lim.inside))
                elif isinstance(value, Symbol) and (not value.option.free or kept(value.option)):
                    holds = holds | (case_condition & limit(value.option, lim.values, lim.inside))
                elif _constant(value) and lim.allows(_plain(value)):
                    holds = holds | case_condition
                elif not _constant(value) and not lim.inside:  # an object: not None, not falsy
                    holds = holds | case_condition
            fixed = fixed & holds
            if not fixed.possible:
                break
        result = result | fixed
    return result


def _constant(value: Any) -> bool:
    from amplint.cases import DType

    return value is None or isinstance(value, (int, float, str, bool, DType))


def _plain(value: Any) -> Any:
    from amplint.cases import DType

    return value.name if isinstance(value, DType) else value


def precise(value: Json) -> bool:
    """Whether a portable value may be an object with precision facts or a GradScaler (or,
    unresolved, become one): what a method overriding the one called needs from the call;
    constants and plain objects are left to its own code."""
    kind = value[0]
    return kind in ("param", "result") or (kind == "obj" and bool(value[2] or value[3]))


def value_from(data: Json):
    """A portable value as the evaluator's value (amplint.cases); UNKNOWN for what the project
    pass could not resolve."""
    from amplint.cases import UNKNOWN, DType, Foreign, Namespace, Symbol

    kind = data[0]
    if kind == "const":
        return data[1]
    if kind == "dtype":
        return DType(data[1])
    if kind == "opt":
        return Symbol(option_from(data[1]))
    if kind == "ns":
        return Namespace(tuple((dest, option_from(o)) for dest, o in data[1]), data[2])
    if kind == "obj":
        _, built_by, facts, enabled = data
        return Foreign(
            built_by,
            tuple(fact_from(f) for f in facts),
            condition_from(enabled) if enabled is not None else None,
        )
    return UNKNOWN


def values_from(cases: Json) -> list:
    """Portable cases as (Condition, value) pairs."""
    return [(condition_from(condition), value_from(value)) for condition, value in cases]
