"""What an expression is in each configuration of the script, and when a line of code runs.

``cases(expr)`` is a list of (Condition, value) pairs: the value ``expr`` has under each set of
configurations. A name takes the values its assignments give it on the paths that reach the
use (``dtype = 'float32'`` then ``if args.fp16: dtype = 'float16'``); an option is a
:class:`Symbol` that stays unsplit until a test or a switch reads it; a ternary splits on its
test. Values are constants, :class:`DType` (``torch.float16``), :class:`Symbol` (an option),
:class:`Made` (the object a call returned), :class:`Local` (a function of this module) or
``UNKNOWN``.

``condition(test)`` is where an ``if`` test holds: over options where the test reads them, and
over an opaque outcome of the test itself where it cannot be folded (both sides of
``if torch.cuda.is_available():`` run in some configuration). ``runs(site)`` is where a call
runs: the tests around it, and the tests around the calls of its function in this module
("the float32 side of an option stays float32, also when the two sides are two functions").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable, Union

import libcst as cst

from amplint.conditions import ALWAYS, NEVER, Condition, Option, limit, truthy, within
from amplint.index import (
    CHOSEN_BODY,
    CHOSEN_ELSE,
    IF_BODY,
    IF_ELSE,
    AssignSite,
    CallSite,
    FileIndex,
    Scope,
    dotted,
    string_value,
)
from amplint.interface import Summary, value_from
from amplint.options import NOT_LITERAL, Options, literal

# Spellings of dtypes: attribute names (torch.half, np.float16) and strings ('fp16').
DTYPE_NAMES = {
    "float16": "float16",
    "half": "float16",
    "fp16": "float16",
    "mixed_float16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "mixed_bfloat16": "bfloat16",
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "single": "float32",
    "float64": "float64",
    "double": "float64",
}
REDUCED = ("float16", "bfloat16")
_DTYPE_MODULES = ("torch", "numpy", "tensorflow", "jax", "mxnet", "keras", "tf_keras", "cupy")
_DTYPE_ALIASES = ("tf", "np", "torch", "jnp", "mx", "nd", "npx", "onp", "numpy", "tensorflow")
_MAX_DEPTH = 14
_MAX_CASES = 12
ABSL_FLAGS = "absl.flags.FLAGS"  # an open namespace: any module may define its flags


@dataclass(frozen=True)
class DType:
    """A dtype object such as ``torch.float16`` (its canonical name)."""

    name: str


@dataclass(frozen=True)
class Symbol:
    """The value of an option, in whatever configuration runs."""

    option: Option


@dataclass(frozen=True)
class Made:
    """The object a call returned (an instance, a context manager...); ``element``: the
    element at that position of the tuple it returned (``model, transform = build()``)."""

    site: CallSite
    element: int | None = None


@dataclass(frozen=True)
class Local:
    """A function of this module, as a value (``step = train_amp if args.amp else train``)."""

    scope: Scope


@dataclass(frozen=True)
class Foreign:
    """An object another module of the project passes in (see :mod:`amplint.interface`):
    what built it, its precision facts, where it is an enabled GradScaler."""

    kind: str
    facts: tuple = ()
    enabled: Condition | None = None


@dataclass(frozen=True)
class Namespace:
    """An argparse namespace another module passes in: its options by ``dest``; ``open``:
    every attribute is a flag set on the command line (absl's ``flags.FLAGS``, whose flags
    any module may define)."""

    options: tuple[tuple[str, Option], ...]
    open: bool = False

    def option(self, dest: str) -> Option | None:
        found = next((option for name, option in self.options if name == dest), None)
        if found is None and self.open:
            return Option(f"--{dest}", f"--{dest}")
        return found


@dataclass(frozen=True)
class Definition:
    """An expression a name may hold: under ``condition``, evaluated in ``scope`` at
    ``order`` (``expr`` None: a parameter nobody in this module passes; ``value``: what
    another module passes, already a value; ``element``: the position of the name in a
    tuple unpacked from the call ``expr``)."""

    condition: Condition
    expr: cst.BaseExpression | None
    scope: Scope
    order: int | None
    value: object = None
    element: int | None = None

    def narrowed(self, condition: Condition) -> Definition | None:
        both = self.condition & condition
        if not both.possible:
            return None
        return dataclasses.replace(self, condition=both)


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
Value = Union[int, float, str, bool, None, DType, Symbol, Made, Local, Foreign, Namespace, _Unknown]
Case = tuple[Condition, Value]


@dataclass(frozen=True)
class Size:
    """A whole number an expression has in the configurations of ``condition``: written as a
    constant, or an option's default (``option``); ``computed`` when arithmetic made it."""

    condition: Condition
    value: int
    option: Option | None = None
    computed: bool = False

    def narrowed(self, condition: Condition) -> Size:
        return Size(self.condition & condition, self.value, self.option, self.computed)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names_in(expr: cst.BaseExpression) -> set[str]:
    """Plain names an expression may evaluate to (through ternaries, boolean operators,
    containers and items): the candidates for a function held as a value."""
    if isinstance(expr, cst.Name):
        return {expr.value}
    if isinstance(expr, cst.IfExp):
        return _names_in(expr.body) | _names_in(expr.orelse)
    if isinstance(expr, cst.BooleanOperation):
        return _names_in(expr.left) | _names_in(expr.right)
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        return {n for e in expr.elements for n in _names_in(e.value)}
    if isinstance(expr, cst.Dict):
        return {
            n for e in expr.elements if isinstance(e, cst.DictElement) for n in _names_in(e.value)
        }
    if isinstance(expr, cst.Subscript):
        return _names_in(expr.value)
    if isinstance(expr, cst.Call):  # functools.partial(step, ...)
        return {n for argument in expr.args for n in _names_in(argument.value)}
    return set()


def _as_sizes(cases) -> list[Size] | None:
    """Cases as whole numbers (a constant, or the default of a numeric option; a numeric
    option without a default is left out); None when one of them is anything else."""
    found = []
    for condition, value in cases:
        if _whole(value):
            found.append(Size(condition, value))
        elif isinstance(value, Symbol) and not value.option.free and _whole(value.option.default):
            found.append(Size(condition, value.option.default, value.option))
        elif _user_number(value):
            continue  # the number the user gives (``--embed-unit N``): the user's choice
        else:
            return None
    return found


def _user_number(value: object) -> bool:
    """A numeric option without a default: its value is whatever the user passes."""
    return (
        isinstance(value, Symbol)
        and not value.option.free
        and value.option.kind == "number"
        and value.option.default is None
    )


_ARITHMETIC: dict[type, Callable[[int, int], object]] = {
    cst.Add: lambda a, b: a + b,
    cst.Subtract: lambda a, b: a - b,
    cst.Multiply: lambda a, b: a * b,
    cst.FloorDivide: lambda a, b: a // b,
    cst.Modulo: lambda a, b: a % b,
}


def _dtype_attribute(name: str | None, index: FileIndex, scope: Scope) -> DType | None:
    if name is None or "." not in name:
        return None
    base, _, last = name.rpartition(".")
    canonical = DTYPE_NAMES.get(last)
    if canonical is None or last.startswith("mixed"):
        return None
    head = base.split(".")[0]
    module = (index.resolve(head, scope) or "").split(".")[0]
    if module in _DTYPE_MODULES:
        return DType(canonical)
    unbound = not any(head in s.assigned or head in s.params for s in _chain(scope))
    return DType(canonical) if unbound and head in _DTYPE_ALIASES else None


def _chain(scope: Scope | None):
    while scope is not None:
        yield scope
        scope = scope.parent


class Evaluator:
    """Cases, conditions and reachability for one module."""

    def __init__(
        self,
        index: FileIndex,
        options: Options | None = None,
        received: dict[str, dict[str, list[Case]]] | None = None,
        summaries: dict | None = None,
        detached: Scope | None = None,
    ) -> None:
        self.index = index
        self.options = options or Options(index)
        # what other modules pass: function path ("train", "Trainer.__init__") -> parameter
        # (name, or position for ``*args``-free calls) -> cases
        self.received = received or {}
        # what calling a function of another module returns, by the name this module calls it
        self.summaries: dict = summaries or {}
        self._memo: dict[tuple, tuple[Case, ...]] = {}
        self._active: set[tuple] = set()
        self._reach: dict[int, Condition] = {}
        self._assigns: dict[tuple[int, str], list[AssignSite]] | None = None
        self._callers: dict[int, list[CallSite]] | None = None
        self._references: dict[int, list[tuple[Condition, Scope]]] | None = None
        self._frames: dict[int, CallSite] = {}  # scope id -> the call running it, along a chain
        self._frame_key: tuple[int, ...] = ()
        # a function read in its own frame (what calling it does, whoever calls it): its
        # parameters are free and it runs wherever it is called
        self._detached = detached
        self._compared: dict[tuple[int, str], frozenset[str]] = {}  # see _compared_strings
        # what reading a property of another module's class gives (the precision model's,
        # from the project's summaries): ``builder.model`` -> cases, None when not one
        self.properties: Callable[[cst.Attribute, Scope, int | None], list | None] | None = None

    # ---- values ---------------------------------------------------------------------------
    def cases(
        self, expr: cst.BaseExpression | None, scope: Scope, order: int | None = None
    ) -> tuple[Case, ...]:
        """The values ``expr`` has, each with the configurations it has it in."""
        if expr is None:
            return ((ALWAYS, UNKNOWN),)
        key = (id(expr), id(scope), order, self._frame_key)
        found = self._memo.get(key)
        if found is not None:
            return found
        if key in self._active or len(self._active) > _MAX_DEPTH:
            return ((ALWAYS, UNKNOWN),)
        self._active.add(key)
        try:
            found = _bounded(self._cases(expr, scope, order))
        finally:
            self._active.discard(key)
        self._memo[key] = found
        return found

    def _cases(self, expr: cst.BaseExpression, scope: Scope, order: int | None) -> list[Case]:
        constant = literal(expr)
        if constant is not NOT_LITERAL:
            return [(ALWAYS, constant)]
        if self.index.borrowed and isinstance(expr, (cst.Name, cst.Attribute)):
            borrowed = self.index.constant_of(dotted(expr), scope)
            if borrowed is not None:
                return [(ALWAYS, borrowed[0])]
        if isinstance(expr, cst.Name):
            return self._name(expr.value, scope, order)
        if isinstance(expr, cst.Attribute):
            return self._attribute(expr, scope, order)
        if isinstance(expr, cst.IfExp):
            true, false = self.branches(expr.test, scope, order)
            return [
                *within(self.cases(expr.body, scope, order), true),
                *within(self.cases(expr.orelse, scope, order), false),
            ]
        if isinstance(expr, (cst.Comparison, cst.BooleanOperation)) or (
            isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Not)
        ):
            true, false = self.branches(expr, scope, order)
            return [(true, True), (false, False)]
        if isinstance(expr, cst.Subscript):
            return self._item(expr, scope, order)
        if isinstance(expr, cst.Call):
            return self._call(expr, scope, order)
        return [(ALWAYS, UNKNOWN)]

    def _name(self, name: str, scope: Scope, order: int | None) -> list[Case]:
        binding, _ = _binding(name, scope)
        if binding is None:
            local = self.index.functions.get(name)
            if local is not None and self.index.resolve(name, scope) is None:
                return [(ALWAYS, Local(local))]
            return [(ALWAYS, UNKNOWN)]
        option = self.options.global_value(name, binding) or (
            self.options.parameter(name, binding) if name in binding.params else None
        )
        if option is not None:
            return [(ALWAYS, Symbol(option))]
        found: list[Case] = []
        for definition in self.definitions(name, scope, order):
            if definition.value is not None:
                found.append((definition.condition, definition.value))  # type: ignore[arg-type]
            elif definition.expr is None:
                free = Symbol(self.options.free(name, definition.scope))
                found.append((definition.condition, free if name in binding.params else UNKNOWN))
            else:
                found += self._defined(definition)
        return found

    def _defined(self, definition: Definition) -> list[Case]:
        """The cases of what a definition assigns (an element of a tuple a call returned:
        that element)."""
        values = self.cases(definition.expr, definition.scope, definition.order)
        if definition.element is not None:
            values = tuple(
                (c, Made(v.site, definition.element))
                if isinstance(v, Made) and v.site.node is definition.expr
                else (c, v)
                for c, v in values
            )
        return within(values, definition.condition)

    def definitions(self, name: str, scope: Scope, order: int | None = None) -> list[Definition]:
        """The expressions ``name`` may hold where ``scope`` reads it at ``order``, each with
        the configurations that leave it there: the assignments reaching that point (one in
        a branch keeps the earlier value on the other side), and for a parameter what the
        calls of this module pass (or its default). ``expr`` None: a value nobody here gives."""
        binding, same = _binding(name, scope)
        if binding is None:
            return []
        state = self._parameter(name, binding) if name in binding.params else []
        until = order if same else None
        for assign in self._assignments(binding, name):
            if until is not None and assign.order >= until:
                break
            path = self.path(assign.ancestors, binding)
            here = Definition(path, assign.value, binding, assign.order, element=assign.element)
            if path.always:
                state = [here]
                continue
            kept = []
            for earlier in state:
                narrowed = earlier.narrowed(~path)
                if narrowed is not None:
                    kept.append(narrowed)
            state = [here, *kept]
        return state

    def _assignments(self, scope: Scope, name: str) -> list[AssignSite]:
        if self._assigns is None:
            self._assigns = {}
            for assign in self.index.assigns:
                for target in assign.targets:
                    self._assigns.setdefault((id(assign.scope), target), []).append(assign)
        return self._assigns.get((id(scope), name), [])

    def _parameter(self, name: str, scope: Scope) -> list[Definition]:
        if scope is self._detached:
            return [Definition(ALWAYS, None, scope, None)]
        bound = self._frames.get(id(scope))
        callers = [bound] if bound is not None else self.callers(scope)
        received = self._received(name, scope) if bound is None else []
        if not callers:
            return received or [Definition(ALWAYS, None, scope, None)]
        default = scope.params.get(name)
        positional = positional_parameters(scope)
        found: list[Definition] = []
        for caller in callers:
            position = positional.index(name) if name in positional else None
            passed = caller.arg(position, name)
            if passed is None and any(argument.star for argument in caller.node.args):
                return [Definition(ALWAYS, None, scope, None)]  # maybe in *args / **kwargs
            where = ALWAYS if bound is not None else self.runs(caller)
            if passed is not None:
                found.append(Definition(where, passed, caller.scope, caller.order))
            elif default is not None:
                found.append(Definition(where, default, scope.parent or scope, None))
            else:
                found.append(Definition(where, None, scope, None))
        return found + received

    def _received(self, name: str, scope: Scope) -> list[Definition]:
        """What other modules of the project pass for parameter ``name`` (by name, or by its
        position among the parameters a call fills by position)."""
        path = function_path(scope)
        given = self.received.get(path or "")
        if given is None:  # no other module calls it
            return []
        positional = positional_parameters(scope)
        cases = list(given.get(name, []))
        if name in positional:
            cases += given.get(str(positional.index(name)), [])
        if not cases:
            default = scope.params.get(name)
            return [Definition(ALWAYS, default, scope.parent or scope, None)] if default else []
        return [Definition(c, None, scope, None, v) for c, v in cases]

    def _attribute(self, expr: cst.Attribute, scope: Scope, order: int | None) -> list[Case]:
        name = dotted(expr)
        dtype = _dtype_attribute(name, self.index, scope)
        if dtype is not None:
            return [(ALWAYS, dtype)]
        if name is not None and name.startswith("self.") and name.count(".") == 1:
            setters = _setters(name, self.index, scope)
            if setters:
                found: list[Case] = []
                for method in setters:  # any of the methods may have run last
                    if method is None:  # a base class of another module may set it
                        found.append((ALWAYS, UNKNOWN))
                        continue
                    for definition in self.definitions(name, method):
                        values = self.cases(definition.expr, definition.scope, definition.order)
                        found += within(values, definition.condition)
                return found
        if self.index.resolve(name, scope) == ABSL_FLAGS:
            return [(ALWAYS, Namespace((), open=True))]
        if isinstance(expr.value, cst.Name) and self.received:
            named = self._attributes_of(expr, scope, order, free=False)
            if named is not None:
                return named
        if self.properties is not None:
            read = self.properties(expr, scope, order)
            if read is not None:
                return read
        option = self.options.attribute(expr, scope)
        if option is not None:
            return [(ALWAYS, Symbol(option))]
        if isinstance(expr.value, cst.Name) and expr.value.value not in ("self", "cls"):
            binding, _ = _binding(expr.value.value, scope)
            if binding is not None and expr.value.value in binding.params:
                named = self._attributes_of(expr, scope, order)
                if named is not None:
                    return named
        return [(ALWAYS, UNKNOWN)]

    def _attributes_of(
        self, expr: cst.Attribute, scope: Scope, order: int | None, free: bool = True
    ):
        """``flags_obj.dtype`` of a parameter: the option of the namespace a caller passes
        (argparse's, absl's ``flags.FLAGS``), or (``free``), where nothing here passes it, a
        value the module's callers tell (a free option named by the parameter and the
        attribute; the module's own options come first). None when the parameter holds
        nothing of the kind."""
        attribute = expr.attr.value
        found: list[Case] = []
        for condition, value in self.cases(expr.value, scope, order):
            option = None
            if isinstance(value, Namespace):
                option = (value.open and self.options.flag(attribute)) or value.option(attribute)
            elif free and isinstance(value, Symbol) and value.option.free:
                if "." in value.option.shown:
                    continue
                option = self.options.free_attribute(value.option, attribute)
            if option is not None:
                found.append((condition, Symbol(option)))
        return found or None

    def _item(self, expr: cst.Subscript, scope: Scope, order: int | None) -> list[Case]:
        """``TABLE[key]`` of a dict literal (``{'float16': torch.float16, ...}[dtype]``,
        ``self.losses['seg']``), the key folded or an option."""
        if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
            return [(ALWAYS, UNKNOWN)]
        name = dotted(expr.value)
        if isinstance(expr.value, cst.Dict):
            mappings = [Definition(ALWAYS, expr.value, scope, order)]
        elif name is None:
            return [(ALWAYS, UNKNOWN)]
        elif name in self.index.item_assigned:
            return self._stored_item(name, expr.slice[0].slice.value, scope, order)
        else:
            mappings = self.expressions(name, scope, order)
        found: list[Case] = []
        keys = self.cases(expr.slice[0].slice.value, scope, order)
        for mapping in mappings:
            entries = _entries(mapping.expr)
            if entries is None:
                return [(ALWAYS, UNKNOWN)]
            for condition, key in keys:
                condition = condition & mapping.condition
                if isinstance(key, Symbol):
                    for written, value in entries:
                        chosen = condition & limit(key.option, {written})
                        found += within(self.cases(value, mapping.scope, None), chosen)
                elif key is UNKNOWN:
                    found.append((condition, UNKNOWN))
                else:
                    for written, value in entries:
                        if written == key:
                            found += within(self.cases(value, mapping.scope, None), condition)
        return found or [(ALWAYS, UNKNOWN)]

    def _stored_item(
        self, name: str, key: cst.BaseExpression, scope: Scope, order: int | None
    ) -> list[Case]:
        """``params["dtype"]`` after ``params["dtype"] = get_tf_dtype(flags_obj)`` in the same
        function, on every path to the read: what was stored (anything else: unknown)."""
        written = literal(key)
        if written is NOT_LITERAL or order is None:
            return [(ALWAYS, UNKNOWN)]
        stored = None
        for assign in self.index.item_assigns:
            if assign.scope is scope and assign.order < order and assign.targets == (name,):
                key_written = literal(assign.key)
                if key_written == written or key_written is NOT_LITERAL:
                    stored = assign if key_written == written else None  # maybe the same key
        if stored is None or not self.path(stored.ancestors, scope).always:
            return [(ALWAYS, UNKNOWN)]
        return list(self.cases(stored.value, scope, stored.order))

    def expressions(self, name: str, scope: Scope, order: int | None = None) -> list[Definition]:
        """What a name or a ``self.`` attribute may hold (see :meth:`definitions`; a ``self.``
        attribute from every method of its class that sets it)."""
        if name.startswith("self.") and name.count(".") == 1 and not scope.is_local(name):
            setters = _setters(name, self.index, scope)
            if any(method is None for method in setters):
                return [Definition(ALWAYS, None, scope, None)]
            return [d for method in setters for d in self.definitions(name, method)]
        return self.definitions(name, scope, order)

    def _call(self, expr: cst.Call, scope: Scope, order: int | None) -> list[Case]:
        site = self.index.site(expr)
        name = dotted(expr.func)
        if name == "getattr" and len(expr.args) >= 2:
            module = dotted(expr.args[0].value)
            if (
                module is not None
                and (self.index.resolve(module, scope) or "").split(".")[0] in _DTYPE_MODULES
            ):
                found: list[Case] = []
                for condition, value in self.cases(expr.args[1].value, scope, order):
                    if isinstance(value, Symbol) and not value.option.free:
                        found += [
                            (chosen, DType(meant))
                            for chosen, meant in _split(value.option, condition, dtype_meaning)
                        ]
                    else:
                        found.append((condition, _as_dtype(value)))
                return found
            attribute = string_value(expr.args[1].value)
            if module is not None and attribute is not None and attribute.isidentifier():
                # ``getattr(args, "embed_unit", None)``: the option ``args.embed_unit``
                spelled_out = cst.Attribute(expr.args[0].value, cst.Name(attribute))
                found = self.cases(spelled_out, scope, order)
                if any(isinstance(value, Symbol) for _, value in found):
                    return found
        if name in ("str", "bool") and len(expr.args) == 1:
            inner = self.cases(expr.args[0].value, scope, order)
            if name == "str":
                return list(inner)
            return [(self._truth(inner), True), (self._truth(inner, value=False), False)]
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("lower", "strip"):
            return [
                (c, v if isinstance(v, (str, Symbol)) else UNKNOWN)
                for c, v in self.cases(expr.func.value, scope, order)
            ]
        if site is None:
            return [(ALWAYS, UNKNOWN)]
        summary = self.summaries.get(site.qualname or "")
        if summary is not None and summary.values:  # a project helper returning a dtype
            return [(c, value_from(v)) for c, v in summary.returned(self.bound(site, summary))]
        return [(ALWAYS, Made(site))]

    def returned(self, scope: Scope) -> list[Case]:
        """What a function returns over its own parameters (free, whatever this module's
        calls pass): what a call from another module gets, its arguments put in."""
        saved = self._detached, self._frame_key
        self._detached, self._frame_key = scope, (-id(scope),)
        try:
            return [case for expr in scope.returns for case in self.cases(expr, scope, None)]
        finally:
            self._detached, self._frame_key = saved

    def bound(
        self, site: CallSite | None, summary: Summary, built: CallSite | None = None
    ) -> dict[str, list[Case]]:
        """The parameters of a project function's summary bound to what ``site`` passes (None:
        a property read, passing nothing), a method's constructor parameters to what the call
        that built its object (``built``) passed (see :meth:`amplint.interface.Summary.bind`)."""
        return summary.bind(self._passed(site), self._passed(built) if built else None)

    def _passed(self, call: CallSite | None) -> Callable[[int, str], list | None]:
        def given(position: int, name: str) -> list | None:
            expr = call.arg(position, name) if call is not None else None
            return list(self.cases(expr, call.scope, call.order)) if expr is not None else None

        return given

    def sizes(
        self, expr: cst.BaseExpression | None, scope: Scope, order: int | None = None
    ) -> list[Size]:
        """The whole numbers ``expr`` (a layer's width, a batch size) has, each with the
        configurations it has it in: constants, simple arithmetic, and an option's default where
        a number is needed (``args.unit`` is 650 unless the user says otherwise), followed
        through names, ternaries, parameters (also those other modules pass), attributes and
        items. Empty when any of its values cannot be told (never a finding)."""
        return self._sizes(expr, scope, order, 0) or []

    def _sizes(
        self, expr: cst.BaseExpression | None, scope: Scope, order: int | None, depth: int
    ) -> list[Size] | None:
        if expr is None or depth > _MAX_DEPTH:
            return None
        constant = literal(expr)
        if constant is not NOT_LITERAL:
            return [Size(ALWAYS, constant)] if _whole(constant) else None
        deeper = depth + 1
        if isinstance(expr, cst.BinaryOperation):
            operate = _ARITHMETIC.get(type(expr.operator))
            lefts = self._sizes(expr.left, scope, order, deeper) if operate else None
            rights = self._sizes(expr.right, scope, order, deeper) if lefts else None
            if operate is None or lefts is None or rights is None:
                return None
            found = []
            for left in lefts:
                for right in rights:
                    both = left.condition & right.condition
                    try:
                        value = operate(left.value, right.value)
                    except (ArithmeticError, ValueError):
                        return None
                    if not _whole(value):
                        return None
                    if both.possible:
                        found.append(Size(both, value, left.option or right.option, True))
            return found[:_MAX_CASES]
        if isinstance(expr, cst.IfExp):
            true, false = self.branches(expr.test, scope, order)
            body = self._sizes(expr.body, scope, order, deeper)
            orelse = self._sizes(expr.orelse, scope, order, deeper)
            if body is None or orelse is None:
                return None
            found = [s.narrowed(true) for s in body] + [s.narrowed(false) for s in orelse]
            return [s for s in found if s.condition.possible][:_MAX_CASES]
        if isinstance(expr, cst.Call) and dotted(expr.func) == "int" and len(expr.args) == 1:
            return self._sizes(expr.args[0].value, scope, order, deeper)
        name = dotted(expr)
        definitions = self.expressions(name, scope, order) if name is not None else []
        if definitions and not (isinstance(expr, cst.Name) and self._read_as_option(name, scope)):
            found = []
            # a parameter: what one caller passes holds for that caller, whatever the others
            # pass (one that cannot be told is left out); any other name is told or not
            callers = isinstance(expr, cst.Name) and expr.value in scope.params
            told = False
            for definition in definitions:
                if definition.value is not None:
                    inner = _as_sizes([(definition.condition, definition.value)])
                else:
                    where = (definition.scope, definition.order, deeper)
                    inner = self._sizes(definition.expr, *where)
                if inner is None and not callers:
                    return None
                if inner is not None:
                    told = True
                    found += [s.narrowed(definition.condition) for s in inner]
            if not told:
                return None
            return [s for s in found if s.condition.possible][:_MAX_CASES]
        return _as_sizes(self.cases(expr, scope, order))

    def _read_as_option(self, name: str, scope: Scope) -> bool:
        """A name the evaluator reads as an option itself (a configurable global, a click
        command's parameter)."""
        binding, _ = _binding(name, scope)
        if binding is None:
            return False
        return bool(
            self.options.global_value(name, binding)
            or (name in binding.params and self.options.parameter(name, binding))
        )

    # ---- tests ----------------------------------------------------------------------------
    def condition(
        self, test: cst.BaseExpression, scope: Scope, order: int | None = None, holds: bool = True
    ) -> Condition:
        """The configurations in which ``test`` is true (``holds``) or false. Each is asked of
        the values case by case, not as the other's complement: a parameter two callers pass
        ``'lstm'`` and ``args.type`` is ``'lstm'`` in some configurations and not ``'lstm'`` in
        others, so both branches of ``if typ == 'lstm':`` run."""
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            return self.condition(test.expression, scope, order, not holds)
        if isinstance(test, cst.BooleanOperation):
            left = self.condition(test.left, scope, order, holds)
            right = self.condition(test.right, scope, order, holds)
            both = isinstance(test.operator, cst.And) == holds
            return left & right if both else left | right
        if isinstance(test, cst.Comparison):
            found = self._comparison(test, scope, order, holds)
            return found if found is not None else truthy(self.options.test(test), holds)
        if isinstance(test, cst.Call) and dotted(test.func) in (
            "isinstance",
            "hasattr",
            "callable",
        ):
            return truthy(self.options.test(test), holds)
        cases = self.cases(test, scope, order)
        known = [(c, v) for c, v in cases if not (v is UNKNOWN or _opaque(v))]
        unknown = NEVER
        for condition, value in cases:
            if value is UNKNOWN or _opaque(value):
                unknown = unknown | condition
        result = self._truth(known, value=holds)
        if unknown.possible:  # where the value is not known, the test's outcome is a choice
            result = result | (unknown & truthy(self.options.test(test), holds))
        return result

    def branches(
        self, test: cst.BaseExpression, scope: Scope, order: int | None = None
    ) -> tuple[Condition, Condition]:
        """Where ``test`` is true, and where it is false (see :meth:`condition`)."""
        return self.condition(test, scope, order), self.condition(test, scope, order, False)

    def _truth(
        self, cases: tuple[Case, ...] | list[Case], free: bool = True, value: bool = True
    ) -> Condition:
        """Where a value with these cases is true (``value``; false otherwise): an option where
        it is set, an object where it exists, what a call into the environment returns
        (``check_amp(model)``, ``torch.cuda.is_available()``) where that test holds; unknown
        values nowhere."""
        result = NEVER
        for condition, found in cases:
            if isinstance(found, Symbol):
                if free or not found.option.free:
                    result = result | (condition & truthy(found.option, value))
            elif _opaque(found):
                assert isinstance(found, Made)
                result = result | (condition & truthy(self.options.test(found.site.node), value))
            elif isinstance(found, (Made, Local, DType, Foreign, Namespace)):
                result = result | condition if value else result
            elif found is not UNKNOWN and bool(found) == value:
                result = result | condition
        return result

    def truth(self, expr: cst.BaseExpression | None, scope: Scope, order: int | None) -> Condition:
        """Where ``expr`` (a switch's ``enabled=``) is true; never where it cannot be told."""
        return self._truth(self.cases(expr, scope, order), free=False)

    def _comparison(
        self, test: cst.Comparison, scope: Scope, order: int | None, holds: bool = True
    ) -> Condition | None:
        """Where a comparison holds (or not, ``holds`` false): over options where a side reads
        one, exactly where both sides are known, and as an opaque choice (named by the test)
        where a side is not."""
        if len(test.comparisons) != 1:
            return None
        target = test.comparisons[0]
        operator = target.operator
        if dotted(test.left) == "__name__":
            return ALWAYS if holds else NEVER
        left = self.cases(test.left, scope, order)
        unknown = NEVER
        equal = NEVER  # where the sides are equal (``in``: where the left is among the right)
        differ = NEVER
        if isinstance(operator, (cst.In, cst.NotIn)):
            right = _constants(target.comparator)
            if right is None:
                return self._substring(test, scope, order, holds)
            for condition, value in left:
                if isinstance(value, Symbol):
                    equal = equal | (condition & limit(value.option, right))
                    differ = differ | (condition & limit(value.option, right, inside=False))
                elif value is UNKNOWN or _opaque(value):
                    unknown = unknown | condition
                elif _plain(value) in right:
                    equal = equal | condition
                else:
                    differ = differ | condition
            positive = isinstance(operator, cst.In)
        elif isinstance(operator, (cst.Equal, cst.NotEqual, cst.Is, cst.IsNot)):
            right_cases = self.cases(target.comparator, scope, order)
            for lc, lv in left:
                for rc, rv in right_cases:
                    both = lc & rc
                    if not both.possible:
                        continue
                    symbol, other = (lv, rv) if isinstance(lv, Symbol) else (rv, lv)
                    if isinstance(symbol, Symbol) and _comparable(other):
                        equal = equal | (both & limit(symbol.option, {_plain(other)}))
                        differ = differ | (both & limit(symbol.option, {_plain(other)}, False))
                    elif (isinstance(lv, _OBJECTS) and rv is None) or (
                        isinstance(rv, _OBJECTS) and lv is None
                    ):
                        differ = differ | both  # an object is not None
                    elif not (_comparable(lv) and _comparable(rv)):
                        unknown = unknown | both
                    elif _plain(lv) == _plain(rv):
                        equal = equal | both
                    else:
                        differ = differ | both
            positive = isinstance(operator, (cst.Equal, cst.Is))
        else:
            return None
        result = equal if positive == holds else differ
        if unknown.possible:  # the choice is named by the test as written
            result = result | (unknown & truthy(self.options.test(test), holds))
        return result

    def _substring(
        self, test: cst.Comparison, scope: Scope, order: int | None, holds: bool
    ) -> Condition | None:
        """``'fp16' in precision`` for a string option: the values it can take (its choices,
        or the strings the function compares it with) that contain the text, and an opaque
        choice for any other value."""
        needle = literal(test.left)
        target = test.comparisons[0]
        name = dotted(target.comparator)
        if not isinstance(needle, str) or name is None:
            return None
        contains = NEVER  # where the text is in the value
        unknown = NEVER
        for condition, value in self.cases(target.comparator, scope, order):
            if isinstance(value, str):
                contains = contains | (condition if needle in value else NEVER)
            elif isinstance(value, Symbol):
                option = value.option
                known = option.domain or self._compared_strings(scope, name)
                if not known:
                    unknown = unknown | condition
                    continue
                matching = {v for v in known if isinstance(v, str) and needle in v}
                contains = contains | (condition & limit(option, matching))
                if option.domain is None:  # a value it is never compared with: unknown
                    unknown = unknown | (condition & limit(option, known, inside=False))
            else:
                unknown = unknown | condition
        result = contains if isinstance(target.operator, cst.In) == holds else ~contains
        result = result & ~unknown
        if unknown.possible:  # the choice is named by the test as written
            result = result | (unknown & truthy(self.options.test(test), holds))
        return result

    def _compared_strings(self, scope: Scope, name: str) -> frozenset[str]:
        """The strings the function of ``scope`` compares ``name`` with (once per function)."""
        while scope.parent is not None and not isinstance(scope.node, cst.FunctionDef):
            scope = scope.parent
        if scope.node is None:
            return frozenset()
        key = (id(scope.node), name)
        if key not in self._compared:
            self._compared[key] = _compared_strings(scope.node, name)
        return self._compared[key]

    # ---- where code runs ------------------------------------------------------------------
    def path(self, ancestors, scope: Scope | None = None) -> Condition:
        """The tests around a node (only those of ``scope`` when given), all holding."""
        result = ALWAYS
        for kind, node in ancestors:
            if kind not in (IF_BODY, IF_ELSE, CHOSEN_BODY, CHOSEN_ELSE):
                continue
            where = self.index.tests.get(id(node))
            if where is None or (scope is not None and where[0] is not scope):
                continue
            holds = kind in (IF_BODY, CHOSEN_BODY)
            result = result & self.condition(node.test, where[0], where[1], holds)
            if not result.possible:
                break
        return result

    def runs(self, site: CallSite) -> Condition:
        """The configurations in which the call ``site`` runs."""
        return self.path(site.ancestors) & self.reach(site.function)

    def runs_along(self, site: CallSite, chain: tuple[CallSite, ...]) -> Condition:
        """Where ``site`` runs when reached through the calls ``chain`` (outermost first),
        each function's parameters bound to what its call in the chain passes."""
        if not chain:
            return self.runs(site)
        saved = self._frames, self._frame_key
        frames = dict(self._frames)
        for call in chain:
            callee = self.index.local_callee(call)
            if callee is not None:
                frames[id(callee)] = call
        self._frames, self._frame_key = frames, tuple(id(call) for call in chain)
        try:
            result = self.path(site.ancestors)
            for call in chain:
                result = result & self.path(call.ancestors)
            return result & self.reach(chain[0].function)
        finally:
            self._frames, self._frame_key = saved

    def reach(self, function: cst.CSTNode | None) -> Condition:
        """Where a function of this module runs: wherever this module calls or picks it
        (every configuration when nothing here does)."""
        if function is None or not isinstance(function, cst.FunctionDef):
            return ALWAYS
        if self._detached is not None and function is self._detached.node:
            return ALWAYS
        key = id(function)
        if key in self._reach:
            return self._reach[key]
        self._reach[key] = ALWAYS  # recursion: assume reachable
        scope = next((s for s in self._scopes() if s.node is function), None)
        uses = self._uses(scope) if scope is not None else []
        result = NEVER if uses else ALWAYS
        for condition in uses:
            result = result | condition
            if result.always:
                break
        self._reach[key] = result
        return result

    def _uses(self, scope: Scope) -> list[Condition]:
        found = [self.runs(caller) for caller in self.callers(scope)]
        if self._references is None:
            self._references = self._collect_references()
        for condition, where in self._references.get(id(scope), []):
            found.append(condition & self.reach(where.node))
        return found

    def _collect_references(self) -> dict[int, list[tuple[Condition, Scope]]]:
        """Functions named as values: ``step = train_amp if args.amp else train`` and
        callbacks passed to calls, with the configurations that pick them."""
        found: dict[int, list[tuple[Condition, Scope]]] = {}
        local_functions = set(self.index.functions)
        for assign in self.index.assigns:
            if not _names_in(assign.value) & local_functions:
                continue  # cannot hold a function of this module: no need to evaluate it
            for condition, value in self.cases(assign.value, assign.scope, assign.order):
                if isinstance(value, Local):
                    path = self.path(assign.ancestors) & self.reach(assign.scope.node)
                    found.setdefault(id(value.scope), []).append((condition & path, assign.scope))
        for site in self.index.calls:
            for argument in site.node.args:
                if isinstance(argument.value, cst.Name):
                    local = self.index.functions.get(argument.value.value)
                    if local is not None and self.index.resolve(argument.value.value) is None:
                        found.setdefault(id(local), []).append((self.runs(site), site.scope))
        return found

    def callers(self, scope: Scope) -> list[CallSite]:
        """The calls of this module that run ``scope``'s function."""
        if self._callers is None:
            self._callers = {}
            for site in self.index.calls:
                callee = self.index.local_callee(site)
                if callee is None and site.name in self.index.classes:
                    callee = self.index.classes[site.name].methods.get("__init__")
                if callee is not None and callee is not site.scope:
                    self._callers.setdefault(id(callee), []).append(site)
        return self._callers.get(id(scope), [])

    def _scopes(self) -> list[Scope]:
        scopes = list(self.index.functions.values())
        for info in self.index.classes.values():
            scopes += info.methods.values()
        return scopes

    # ---- reading values as a switch does --------------------------------------------------
    def read(
        self,
        expr: cst.BaseExpression | None,
        scope: Scope,
        order: int | None,
        meaning: Callable[[object], str | None],
    ) -> list[tuple[Condition, str]]:
        """What a switch's argument means in each configuration, through ``meaning`` (a written
        value -> 'float16', 'bfloat16', 'float32' or None when it means nothing known). An
        option is split over the spellings ``meaning`` knows; values it cannot tell are left
        out (never a finding)."""
        found: list[tuple[Condition, str]] = []
        for condition, value in self.cases(expr, scope, order):
            if isinstance(value, Symbol):
                if not value.option.free:
                    found += _split(value.option, condition, meaning)
                continue
            if value is UNKNOWN or isinstance(value, (Made, Local)):
                continue
            meant = meaning(value.name if isinstance(value, DType) else value)
            if meant is not None:
                found.append((condition, meant))
        return found


def _split(
    option: Option, condition: Condition, meaning: Callable[[object], str | None]
) -> list[tuple[Condition, str]]:
    """An option's value read by a switch: one case per meaning. An option with a known set
    of values is split over them; any other over the spellings the reader names
    (``meaning.spellings``: what a user would type, ``float16`` for a dtype)."""
    domain = option.domain
    spellings = getattr(meaning, "spellings", ())
    candidates = list(domain) if domain is not None else list(spellings)
    if option.default not in candidates:
        candidates.append(option.default)
    by_meaning: dict[str, set] = {}
    for candidate in candidates:
        meant = meaning(candidate)
        if meant is not None:
            by_meaning.setdefault(meant, set()).add(candidate)
    found = []
    for meant, values in sorted(by_meaning.items()):
        chosen = condition & limit(option, values)
        if chosen.possible:
            found.append((chosen, meant))
    return found


def spelled(*spellings: object):
    """Decorator: the spellings a reader splits an open option over."""

    def mark(reader):
        reader.spellings = spellings
        return reader

    return mark


@spelled("float16", "bfloat16", "float32")
def dtype_meaning(value: object) -> str | None:
    """A dtype written as a name or object: 'float16', 'bfloat16', 'float32' (others: None)."""
    if isinstance(value, str):
        meant = DTYPE_NAMES.get(value.lower().replace("torch.", ""))
        return meant if meant in ("float16", "bfloat16", "float32") else None
    return None


def _as_dtype(value: Value) -> Value:
    if isinstance(value, str):
        canonical = DTYPE_NAMES.get(value)
        return DType(canonical) if canonical else UNKNOWN
    return value


def _entries(mapping: cst.BaseExpression | None):
    """(key, value) of a dict literal with constant keys; None for anything else."""
    if not isinstance(mapping, cst.Dict):
        return None
    entries = []
    for element in mapping.elements:
        if not isinstance(element, cst.DictElement):
            return None
        key = literal(element.key)
        if key is NOT_LITERAL:
            return None
        entries.append((key, element.value))
    return entries


def _compared_strings(function: cst.CSTNode, name: str) -> frozenset[str]:
    """The strings ``function`` compares ``name`` with (``name == 'fp16'``, ``name in
    ('fp16', 'bf16')``): the values of an open option it knows of."""
    found: set[str] = set()
    for comparison in _comparisons(function):
        if len(comparison.comparisons) != 1 or dotted(comparison.left) != name:
            continue
        target = comparison.comparisons[0]
        if isinstance(target.operator, (cst.In, cst.NotIn)):
            values = _constants(target.comparator) or set()
        elif isinstance(target.operator, (cst.Equal, cst.NotEqual)):
            values = {literal(target.comparator)}
        else:
            continue
        found |= {value for value in values if isinstance(value, str)}
    return frozenset(found)


def _comparisons(node: cst.CSTNode) -> Iterator[cst.Comparison]:
    if isinstance(node, cst.Comparison):
        yield node
    for child in node.children:
        yield from _comparisons(child)


def _constants(expr: cst.BaseExpression) -> set | None:
    if not isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
        return None
    values = {literal(element.value) for element in expr.elements}
    return None if NOT_LITERAL in values else values


_OBJECTS = (Made, Local, Foreign, Namespace)


def _comparable(value: Value) -> bool:
    """A known value a test can compare (a constant or a dtype)."""
    return not isinstance(value, (Symbol, _Unknown, *_OBJECTS))


def _plain(value: Value):
    return value.name if isinstance(value, DType) else value


def _opaque(value: Value) -> bool:
    """A value whose truth cannot be told: an object some call returned."""
    return isinstance(value, Made) and not _constructor(value.site)


def _constructor(site: CallSite) -> bool:
    last = (site.name or "").rsplit(".", 1)[-1]
    return bool(last) and last[0].isupper()


def _bounded(cases: list[Case]) -> tuple[Case, ...]:
    """Cases with equal values merged; too many become one unknown."""
    merged: dict[object, Condition] = {}
    keys: dict[object, Value] = {}
    for condition, value in cases:
        key = _identity(value)
        merged[key] = merged[key] | condition if key in merged else condition
        keys[key] = value
    found = tuple((condition, keys[key]) for key, condition in merged.items() if condition.possible)
    if len(found) > _MAX_CASES:
        return ((ALWAYS, UNKNOWN),)
    return found or ((ALWAYS, UNKNOWN),)


def _identity(value: Value) -> object:
    if isinstance(value, Made):
        return ("made", id(value.site), value.element)
    if isinstance(value, Local):
        return ("local", id(value.scope))
    return (type(value).__name__, repr(value))


def _binding(name: str, scope: Scope) -> tuple[Scope | None, bool]:
    """The scope that binds ``name`` seen from ``scope``, and whether it is ``scope`` itself
    (a use in a nested function sees every assignment of the outer one). None when rebound."""
    current: Scope | None = scope
    while current is not None:
        if name in current.rebound and name not in current.assigned:
            return None, False
        if name in current.params or name in current.assigned:
            return current, current is scope
        current = current.parent
    return None, False


def function_path(scope: Scope) -> str | None:
    """How other modules name a function of this one: ``train``, ``Trainer.__init__``
    (None for nested functions and lambdas)."""
    node = scope.node
    if not isinstance(node, cst.FunctionDef):
        return None
    if scope.owner is not None:
        return f"{scope.owner}.{node.name.value}"
    return node.name.value if scope.parent is not None and scope.parent.node is None else None


def positional_parameters(scope: Scope) -> list[str]:
    """Parameters a call fills by position (``self`` left out for methods)."""
    node = scope.node
    if not isinstance(node, cst.FunctionDef):
        return list(scope.positional)
    names = [p.name.value for p in (*node.params.posonly_params, *node.params.params)]
    return names[1:] if scope.owner is not None else names


def _setters(name: str, index: FileIndex, scope: Scope) -> list[Scope | None]:
    """The methods of the method's class (and of its base classes in this module) that set
    ``self.x``, with None for a base class of another module of the project, which may set it
    too; none at all when one of them changes it in place (``self.x += 1``)."""
    current: Scope | None = scope
    while current is not None and current.owner is None:
        current = current.parent
    if current is None:
        return []
    setters: list[Scope | None] = []
    pending, seen = [current.owner], set()
    while pending:
        info = index.classes.get(pending.pop() or "")
        if info is None or info.node.name.value in seen:
            continue
        seen.add(info.node.name.value)
        for method in info.methods.values():
            if name in method.rebound:
                return []
            if name in method.assigned:
                setters.append(method)
        for base in info.bases:
            if base in index.classes:
                pending.append(base)
            elif _project_class(base, index) and not name.startswith("self._"):
                setters.append(None)  # ``self._x`` is the class's own by convention
    return setters if any(s is not None for s in setters) else []


_FRAMEWORK_HEADS = ("torch", "mxnet", "tensorflow", "keras", "tf_keras", "object", "gluon", "nn")


def _project_class(base: str, index: FileIndex) -> bool:
    """A base class imported from the project (not a framework's ``Module`` or ``Block``)."""
    qualname = index.resolve(base)
    if qualname is None:
        return base.split(".")[0] not in _FRAMEWORK_HEADS and base not in ("object", "ABC")
    return qualname.startswith(".") or qualname.split(".")[0] not in _FRAMEWORK_HEADS
