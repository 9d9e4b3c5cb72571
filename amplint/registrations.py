"""Options a project registers on parsers it is handed, and the namespaces it hands on.

Models often own their command-line options. In ESPnet-style code ``E2E.add_arguments(parser)``
registers ``--eunits`` through ``add_arguments_rnn_encoder_common(group)`` of another module;
``E2E.__init__(self, idim, odim, args)`` reads ``args.eunits`` and hands ``args`` on to
``encoder_for(args, ...)`` of a third module, which builds the layers. No module parses that
namespace itself, so none of them can tell what ``args.eunits`` is by reading itself.

What one file says about this is read with Python's ``ast`` (a cheap parse, only for files whose
text names ``add_argument``), as JSON facts cached with the file (:func:`scan`):

* **registrars**: each function with a parser parameter (one it calls ``add_argument*`` on, or
  named like a parser): the options it adds to it or to a group made from it, and the functions
  it hands that parser or group to (names resolved through the module's imports);
* **hand-offs**: calls passing a configuration-named variable (``args``, ``cfg``, ...) on, with
  its position or keyword.

The project pass joins them (:class:`Registry`): a module's registered options are those of all
its registrars, through the registrars of other modules they call; its functions read
``args.eunits`` as that option (with its default), and a function it hands ``args`` to receives
them as an argparse namespace (``["ns", ...]``, see :mod:`amplint.interface`).
"""

from __future__ import annotations

import ast
import io
import json
from collections.abc import Callable, Iterator

from amplint.interface import option_json

_GROUPS = ("add_argument_group", "add_mutually_exclusive_group")
_DEPTH = 4
Located = tuple[str, str]  # (module path, function path)


def scan(source: str, imports: dict[str, str]) -> str:
    """The registrars and hand-offs of one module as JSON ("" when it has none); ``imports``:
    each name its imports bind -> what it imports."""
    if "add_argument" not in source:
        return ""
    from amplint.options import CONFIG_NAME  # libcst: only when a file is read, not cached

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""  # the lint reports the syntax error
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    lines = io.StringIO(source, newline="").readlines()  # numbered as ast numbers them
    registrars: dict[str, list] = {}
    handoffs: list[list] = []
    for owner, function in _functions(tree):
        path = f"{owner}.{function.name}" if owner else function.name
        nodes = list(ast.walk(function))
        calls = [node for node in nodes if isinstance(node, ast.Call)]
        carriers = _parsers(function, owner, calls, nodes)
        options: list[list] = []
        handed: list[list] = []
        for call in calls:
            receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
            method = call.func.attr if isinstance(call.func, ast.Attribute) else None
            if method == "add_argument" and _name_in(receiver, carriers):
                option = _option(lines, call)
                if option is not None:
                    options.append([option.key[2:], option_json(option)])
            elif method not in _GROUPS and any(_name_in(a, carriers) for a in _passed(call)):
                target = _resolve(_dotted(call.func), owner, imports, defined)
                if target is not None:
                    handed.append(target)
            for key, value in _keys(call):
                if isinstance(value, ast.Name) and CONFIG_NAME.match(value.id):
                    target = _resolve(_dotted(call.func), owner, imports, defined)
                    if target is not None and target[0]:
                        handoffs.append([target[1], key])
        if options or handed:
            registrars[path] = [options, handed]
    if not registrars:
        return ""
    return json.dumps({"registrars": registrars, "handoffs": handoffs}, sort_keys=True)


def _functions(tree: ast.Module) -> Iterator[tuple[str | None, ast.FunctionDef]]:
    """Top-level functions (owner None) and the methods of top-level classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield None, node  # type: ignore[misc]
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield node.name, item  # type: ignore[misc]


def _parsers(
    function: ast.FunctionDef, owner: str | None, calls: list[ast.Call], nodes: list[ast.AST]
) -> set[str]:
    """The function's parser parameters, and the groups and results made from them
    (``group = parser.add_argument_group(...)``, ``group = add_common(group)``); ``calls`` and
    ``nodes``: the calls and all nodes of its body."""
    params = [a.arg for a in function.args.posonlyargs + function.args.args]
    params += [a.arg for a in function.args.kwonlyargs]
    if owner is not None and params and params[0] in ("self", "cls"):
        params = params[1:]
    used_as_parser = {
        call.func.value.id
        for call in calls
        if isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and (call.func.attr == "add_argument" or call.func.attr in _GROUPS)
    }
    carriers = {p for p in params if p in used_as_parser or "parser" in p or p == "group"}
    assigns = [node for node in nodes if isinstance(node, ast.Assign)]
    grown = True
    while grown:
        grown = False
        for assign in assigns:
            value = assign.value
            if not isinstance(value, ast.Call):
                continue
            receiver = value.func.value if isinstance(value.func, ast.Attribute) else None
            if _name_in(receiver, carriers) or any(_name_in(a, carriers) for a in _passed(value)):
                for target in assign.targets:
                    if isinstance(target, ast.Name) and target.id not in carriers:
                        carriers.add(target.id)
                        grown = True
    return carriers


def _option(lines: list[str], call: ast.Call):
    """The option an ``add_argument`` call defines, read by amplint's own argparse reader."""
    import libcst as cst

    from amplint.options import argparse_option

    text = _segment(lines, call)
    if text is None:
        return None
    try:
        node = cst.parse_expression(text)
    except cst.ParserSyntaxError:
        return None
    return argparse_option(node) if isinstance(node, cst.Call) else None


def _segment(lines: list[str], node: ast.expr) -> str | None:
    """The source of ``node`` (what ``ast.get_source_segment`` gives, from lines split once
    per file rather than once per call; offsets are UTF-8 byte columns)."""
    if node.end_lineno is None or node.end_col_offset is None:
        return None
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset :].decode()
    tail = lines[last].encode()[: node.end_col_offset].decode()
    return head + "".join(lines[first + 1 : last]) + tail


def _passed(call: ast.Call) -> Iterator[ast.expr]:
    yield from call.args
    yield from (keyword.value for keyword in call.keywords)


def _keys(call: ast.Call) -> Iterator[tuple[str, ast.expr]]:
    """Each argument with its key: its position among the positional ones, or its keyword."""
    for position, argument in enumerate(call.args):
        if isinstance(argument, ast.Starred):
            break
        yield str(position), argument
    for keyword in call.keywords:
        if keyword.arg is not None:
            yield keyword.arg, keyword.value


def _name_in(node: ast.expr | None, names: set[str]) -> bool:
    return isinstance(node, ast.Name) and node.id in names


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base is not None else None
    return None


def _resolve(
    name: str | None, owner: str | None, imports: dict[str, str], defined: set[str]
) -> list | None:
    """[False, path] for a function of this module (``cls.x`` -> ``Owner.x``), [True, name]
    for one imported (the name as its import gives it), None for anything else."""
    if name is None:
        return None
    head, _, rest = name.partition(".")
    if head in ("cls", "self") and owner is not None and rest:
        return [False, f"{owner}.{rest}"]
    if head in defined:
        return [False, name]
    if head in imports:
        return [True, imports[head] + (f".{rest}" if rest else "")]
    return None


class Registry:
    """Registrars and hand-offs of a project, joined across modules on demand."""

    def __init__(self, facts: dict[str, str], locate: Callable[[str, str], Located | None]) -> None:
        self.facts = {path: json.loads(text) for path, text in facts.items() if text}
        self.locate = locate  # (importer, dotted name) -> the function it names
        self._options: dict[Located, dict[str, list]] = {}

    def options(self, module: str) -> list[list]:
        """[[dest, option], ...]: what every registrar of ``module`` registers, also through
        the registrars it hands its parser to."""
        found: dict[str, list] = {}
        for function in sorted(self.facts.get(module, {}).get("registrars", {})):
            for dest, option in self._registered((module, function), 0).items():
                found.setdefault(dest, option)
        return [[dest, found[dest]] for dest in sorted(found)]

    def _registered(self, where: Located, depth: int) -> dict[str, list]:
        if where in self._options:
            return self._options[where]
        self._options[where] = {}  # a cycle registers nothing more
        module, function = where
        entry = self.facts.get(module, {}).get("registrars", {}).get(function)
        if entry is None or depth > _DEPTH:
            return {}
        own, handed = entry
        found = {dest: option for dest, option in own}
        for imported, name in handed:
            target = self.locate(module, name) if imported else (module, name)
            if target is not None:
                for dest, option in self._registered(target, depth + 1).items():
                    found.setdefault(dest, option)
        self._options[where] = found
        return found

    def handoffs(self, module: str) -> list[list]:
        """[[called name, key], ...]: where ``module`` hands a namespace on."""
        return self.facts.get(module, {}).get("handoffs", [])

    def modules(self) -> list[str]:
        return sorted(self.facts)
