"""What crosses module boundaries: portable values, function summaries and call bindings.

A module hands the modules it calls what it passes them (**bindings**: a project function's
parameters, each with its values per configuration of the caller), and takes from them what
calling them does (**summaries**: the precision of the object a function returns and the
process-wide switches it runs, as conditions over its parameters). Both are plain JSON, part
of the project facts (:mod:`amplint.project`) and of a module's cache key through its context.

Portable forms (JSON lists):

* option: ``[key, shown, kind, default, choices, sets, test, free]``;
* condition: a list of terms, each a list of ``[option, inside, values]``;
* value: ``["const", v]``, ``["dtype", name]``, ``["opt", option]``, ``["obj", kind, facts,
  enabled]`` (an object: what it was built by, its precision facts, where a GradScaler is
  enabled), ``["ns", [[dest, option], ...]]`` (an argparse namespace), and, until the project
  pass resolves them, ``["param", function, name]`` (what the caller's own caller passes) and
  ``["result", target, arguments, facts]`` (what a project function returns, with what the
  caller then did to it: ``model.cast("float16")``);
* cases: ``[[condition, value], ...]``;
* fact: ``[condition, dtype, how, framework, why]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    return Reduced(condition_from(condition), dtype, how, why, None, framework)


@dataclass(frozen=True)
class Summary:
    """What calling a project function does, over its parameters (free options named by the
    parameter): the precision of the object it returns, the process-wide switches it runs."""

    params: tuple[str, ...]  # filled by position, ``self`` left out
    defaults: dict[str, Json] = field(default_factory=dict)  # parameter -> portable cases
    returns: tuple[Json, ...] = ()  # facts
    process: tuple[Json, ...] = ()  # facts

    def to_json(self) -> Json:
        return [list(self.params), self.defaults, list(self.returns), list(self.process)]

    @classmethod
    def from_json(cls, data: Json) -> Summary:
        params, defaults, returns, process = data
        return cls(tuple(params), dict(defaults), tuple(returns), tuple(process))


def substitute(condition: Condition, bound: dict[str, list[tuple[Condition, Any]]]) -> Condition:
    """``condition`` with each free option (a parameter) replaced by what the call passes:
    a constant keeps the terms it satisfies, an option the caller reads takes its place, an
    object is a value that is not None; a parameter nothing is known of makes its terms
    impossible (never a finding)."""
    from amplint.cases import Symbol

    result = NEVER
    for term in condition:
        fixed = ALWAYS
        for lim in term:
            if not lim.option.free:
                fixed = fixed & Condition(frozenset({(lim,)}))
                continue
            holds = NEVER
            for case_condition, value in bound.get(lim.option.shown, []):
                if isinstance(value, Symbol) and not value.option.free:
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
        return Namespace(tuple((dest, option_from(o)) for dest, o in data[1]))
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
