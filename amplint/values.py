"""Constant folding: the value an expression has when the script runs with its defaults.

Follows literals, simple arithmetic, ``int(...)``, names assigned once (in the function or the
module), ``self.`` attributes set once in ``__init__`` (seen from any method of the class),
items of dict literals (``cfg['units']`` with ``cfg = {'units': 100}`` or ``dict(units=100)``,
never changed), parameters' default values and argparse defaults (``args.hidden`` ->
``--hidden``'s default). Anything else is unknown (None): rules report nothing they cannot prove.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Union

import libcst as cst

from amplint.index import FileIndex, Scope, dotted, string_value

Constant = Union[int, float, str, bool, None]

_OPERATORS: dict[type, Callable[[int, int], object]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
    cst.Power: operator.pow,
    cst.Divide: operator.truediv,
}
_MAX_DEPTH = 12


@dataclass(frozen=True)
class Value:
    """A folded value and, when it was written elsewhere, where (``origin``) and how (``via``)."""

    value: Constant
    origin: cst.CSTNode | None = None
    via: str | None = None
    # a parameter's default where nothing in this file calls its function (what callers
    # elsewhere pass is not known here)
    uncalled: bool = False


def fold(expr: cst.BaseExpression | None, index: FileIndex, scope: Scope) -> Value | None:
    """Fold ``expr`` as seen from ``scope``; None when the value is not known statically."""
    return _fold(expr, index, scope, 0)


def _fold(
    expr: cst.BaseExpression | None, index: FileIndex, scope: Scope, depth: int
) -> Value | None:
    if expr is None or depth > _MAX_DEPTH:
        return None
    if isinstance(expr, cst.Integer):
        return Value(int(expr.evaluated_value))
    if isinstance(expr, cst.Float):
        return Value(float(expr.evaluated_value))
    text = string_value(expr)
    if text is not None:
        return Value(text)
    if isinstance(expr, cst.Name) and expr.value in ("True", "False", "None"):
        return Value({"True": True, "False": False, "None": None}[expr.value])
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        inner = _fold(expr.expression, index, scope, depth + 1)
        if inner is not None and isinstance(inner.value, (int, float)):
            return Value(-inner.value, inner.origin, inner.via)
        return None
    if isinstance(expr, cst.BinaryOperation):
        return _binary(expr, index, scope, depth)
    if isinstance(expr, cst.Call) and dotted(expr.func) == "int" and len(expr.args) == 1:
        inner = _fold(expr.args[0].value, index, scope, depth + 1)
        if inner is not None and isinstance(inner.value, (int, float, str)):
            try:
                return Value(int(inner.value), inner.origin, inner.via)
            except ValueError:
                return None
        return None
    if isinstance(expr, cst.Name):
        return _name(expr.value, index, scope, depth)
    if isinstance(expr, cst.Subscript):
        return _item(expr, index, scope, depth)
    if isinstance(expr, cst.Attribute) and dotted(expr) is not None:
        if dotted(expr.value) == "self":
            return _name(f"self.{expr.attr.value}", index, scope, depth)
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
        entry = index.argparse.get(expr.attr.value)
        if entry is not None:
            inner = _fold(entry[0], index, index.module_scope, depth + 1)
            if inner is not None:
                return Value(inner.value, inner.origin or entry[0], f"default of {entry[1]}")
    return None


def _binary(expr: cst.BinaryOperation, index: FileIndex, scope: Scope, depth: int) -> Value | None:
    op = _OPERATORS.get(type(expr.operator))
    left = _fold(expr.left, index, scope, depth + 1)
    right = _fold(expr.right, index, scope, depth + 1)
    if op is None or left is None or right is None:
        return None
    if not all(
        isinstance(v.value, (int, float)) and not isinstance(v.value, bool) for v in (left, right)
    ):
        return None
    if isinstance(expr.operator, cst.Power) and abs(right.value) > 64:  # type: ignore[arg-type]
        return None
    try:
        result = op(left.value, right.value)  # type: ignore[arg-type]
    except (ArithmeticError, ValueError):
        return None
    source = left if left.origin is not None else right
    uncalled = left.uncalled or right.uncalled
    return Value(result, source.origin, source.via, uncalled)  # type: ignore[arg-type]


def _parameter(name: str, scope: Scope, index: FileIndex, depth: int) -> Value | None:
    """A parameter's value: what every caller in this file passes, else its default."""
    default = scope.params[name]
    candidates: list[tuple[cst.BaseExpression | None, Scope]] = []
    if scope.callee is not None:
        for site in index.calls_named(scope.callee):
            if any(argument.star for argument in site.node.args):
                return None
            position = scope.positional.index(name) if name in scope.positional else None
            candidates.append((site.arg(position, name), site.scope))
    passed = [(expr, where) for expr, where in candidates if expr is not None]
    if not passed or len(passed) < len(candidates):
        passed.append((default, scope.parent or index.module_scope))
    values = []
    for expr, where in passed:
        inner = _fold(expr, index, where, depth + 1)
        if inner is None:
            return None
        via = inner.via or (f"default of {name}" if expr is default else f"{name}")
        uncalled = inner.uncalled or not candidates
        values.append(Value(inner.value, inner.origin or expr, via, uncalled))
    if len({repr(v.value) for v in values}) != 1:
        return None
    return values[0]


def _binding(name: str, index: FileIndex, scope: Scope) -> Scope | None:
    """The scope whose parameter or single assignment binds ``name`` as seen from ``scope``
    (for ``self.x`` from a method: the class's ``__init__``); None if unknown or rebound."""
    current: Scope | None = scope
    while current is not None:
        if name in current.rebound:
            return None
        if name in current.params or name in current.assigned:
            return current
        current = current.parent
    if name.startswith("self."):
        return _init_binding(name, index, scope)
    return None


def _init_binding(name: str, index: FileIndex, scope: Scope) -> Scope | None:
    """``__init__`` of the method's class when it is the only method that sets ``name``."""
    current: Scope | None = scope
    while current is not None and current.owner is None:
        current = current.parent
    info = index.classes.get(current.owner or "") if current is not None else None
    if info is None:
        return None
    setters = [m for m in info.methods.values() if name in m.assigned or name in m.rebound]
    init = info.methods.get("__init__")
    return init if setters == [init] and name not in init.rebound else None


def _name(name: str, index: FileIndex, scope: Scope, depth: int) -> Value | None:
    current = _binding(name, index, scope)
    if current is None:
        return None
    if name in current.params:
        if name in current.assigned:
            return None
        return _parameter(name, current, index, depth)
    values = current.assigned[name]
    if len(values) != 1:
        return None
    inner = _fold(values[0], index, current, depth + 1)
    if inner is None:
        return None
    return Value(inner.value, inner.origin or values[0], inner.via or name)


def _item(expr: cst.Subscript, index: FileIndex, scope: Scope, depth: int) -> Value | None:
    """``cfg['units']`` where ``cfg`` is bound once to a dict literal or ``dict(...)`` whose
    items are never set or updated."""
    name = dotted(expr.value)
    if name is None or name in index.item_assigned or len(expr.slice) != 1:
        return None
    if any(index.calls_named(f"{name}.{m}") for m in ("update", "setdefault", "pop", "clear")):
        return None
    index_node = expr.slice[0].slice
    key = (
        _fold(index_node.value, index, scope, depth + 1)
        if isinstance(index_node, cst.Index)
        else None
    )
    current = _binding(name, index, scope)
    if key is None or current is None or name in current.params:
        return None
    values = current.assigned[name]
    found = _dict_entry(values[0], key.value, index, current, depth) if len(values) == 1 else None
    if found is None:
        return None
    inner = _fold(found, index, current, depth + 1)
    if inner is None:
        return None
    return Value(inner.value, inner.origin or found, inner.via or f"{name}[{key.value!r}]")


def _dict_entry(
    mapping: cst.BaseExpression, key: Constant, index: FileIndex, scope: Scope, depth: int
) -> cst.BaseExpression | None:
    """The value expression stored under ``key`` (None if absent or not known)."""
    found = None
    if isinstance(mapping, cst.Dict):
        for element in mapping.elements:
            if not isinstance(element, cst.DictElement):
                return None  # ``**other`` may hold the key
            written = _fold(element.key, index, scope, depth + 1)
            if written is None:
                return None
            if written.value == key:
                found = element.value
        return found
    if isinstance(mapping, cst.Call) and dotted(mapping.func) == "dict":
        for argument in mapping.args:
            if argument.keyword is None:
                return None
            if argument.keyword.value == key:
                found = argument.value
    return found
