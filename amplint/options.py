"""A script's configuration space: what a user sets at run time, and the values it can take.

* argparse: ``add_argument('--dtype', ...)`` read as ``args.dtype``. A flag (``store_true``,
  ``store_false``, a ``str2bool``-like type) is true or false; an option with ``choices`` takes
  one of them; any other option any value of its type (a ``--dtype`` string can be
  ``float16`` whatever its default).
* click: the parameters of a function decorated with ``@click.option``.
* absl: ``flags.DEFINE_boolean('use_mixed_precision', False, ...)`` read as
  ``FLAGS.use_mixed_precision``.
* configuration objects: attributes of an object the script reads at run time (``cfg.fp16``,
  ``args.amp`` for options another module adds, ``self._cfg.train.amp``): any value.
* module globals a configurator overrides (nanoGPT's ``exec(open('configurator.py').read())``
  or ``globals().update(...)``): every global written as a literal, any value of its type.

Numbers stay their defaults where a value is needed (a layer's width is the default the script
runs with); only tests (``if args.gpus > 0``) range over them.
"""

from __future__ import annotations

import re

import libcst as cst

from amplint.conditions import ANY, BOOL, NUMBER, TEXT, Constant, Option
from amplint.index import (
    FileIndex,
    Scope,
    argparse_names,
    call_argument,
    dotted,
    string_value,
)

# Names under which scripts keep what they read from the command line or a config file.
CONFIG_NAME = re.compile(
    r"^_?(args|argv|opts?|options|cfg|config|conf|configs|hparams|hps?|hyp|flags|FLAGS|settings"
    r"|cmd|cli|hyperparams|hyper_params|[a-z_]*_(args|cfg|config|conf|opts?|options|hparams))$"
)
# Calls whose result is such an object.
_CONFIG_CALL = re.compile(
    r"(^|\.)(parse_args|parse_known_args|parse_args_into_dataclasses|parse_dict|parse_json_file"
    r"|parse_yaml_file|get_config|get_cfg|load_config|read_config|parse_config|from_file|fromfile"
    r"|EasyDict|edict|Namespace|load|safe_load|create)$|(^|\.)(OmegaConf|Config|yaml|json)\."
)
_CONFIGURATORS = ("exec", "globals")


class Options:
    """The options of one module (from its index), looked up as the evaluator meets them."""

    def __init__(self, index: FileIndex, registered: dict[str, Option] | None = None) -> None:
        self.index = index
        # options project functions register on parsers this module's code is handed
        # (amplint.registrations), by dest
        self.registered = registered or {}
        self._options: dict[str, Option] = {}
        self._configurable_globals = _has_configurator(index)
        self._click = _click_parameters(index)
        self._absl = _absl_flags(index)

    def _make(self, key: str, **fields) -> Option:
        found = self._options.get(key)
        if found is None:
            found = self._options[key] = Option(key, **fields)
        return found

    def argument(self, dest: str) -> Option | None:
        """The argparse option stored in ``dest``."""
        entry = self.index.arguments.get(dest)
        if entry is None:
            return self.registered.get(dest)
        site, flag = entry
        return self._make(f"--{dest}", **_argparse_fields(site.node, flag))

    def attribute(self, expr: cst.BaseExpression, scope: Scope) -> Option | None:
        """The option ``expr`` reads: ``args.dtype`` (argparse), ``cfg.fp16`` (a configuration
        object); None for anything else."""
        name = dotted(expr)
        if name is None or "." not in name:
            return None
        base, _, attribute = name.rpartition(".")
        if "." not in base and base != "self" and self.index.resolve(base, scope) is None:
            option = self.argument(attribute)
            if option is not None:
                return option
        if attribute in self._absl and base.rsplit(".", 1)[-1] == "FLAGS":
            return self._make(f"--{attribute}", **self._absl[attribute])
        if not self._config_object(base, scope):
            return None
        return self._make(name, shown=name, kind=ANY)

    def _config_object(self, base: str, scope: Scope) -> bool:
        head = base.split(".")
        if head[0] == "self":
            head = head[1:]
        if not head or self.index.resolve(head[0], scope) is not None:
            return False
        if any(CONFIG_NAME.match(part) for part in head):
            return True
        values = self.index.values_of(base, scope)
        return bool(values) and all(
            isinstance(v, cst.Call) and _CONFIG_CALL.search(dotted(v.func) or "") for v in values
        )

    def parameter(self, name: str, scope: Scope) -> Option | None:
        """A click command's parameter."""
        fields = self._click.get((id(scope.node), name))
        return self._make(f"--{name}@{id(scope.node)}", **fields) if fields else None

    def global_value(self, name: str, scope: Scope) -> Option | None:
        """A module global a configurator may override (written once, as a literal)."""
        if not self._configurable_globals or scope is not self.index.module_scope:
            return None
        values = scope.assigned.get(name, [])
        if len(values) != 1 or name in scope.rebound:
            return None
        value = values[0]
        choices = [value.body, value.orelse] if isinstance(value, cst.IfExp) else [value]
        written = [literal(choice) for choice in choices]  # ``a if test else b``: either
        if any(w is NOT_LITERAL for w in written):
            return None
        return self._make(name, shown=name, kind=_kind_of(written[0]), default=written[-1])

    def free(self, name: str, scope: Scope) -> Option:
        """A parameter of ``scope``'s function that no call of this module passes (keyed
        ``~function:name``: other modules may tell what it is, see amplint.interface)."""
        return self._make(f"{free_prefix(scope)}{name}", shown=name, kind=ANY, free=True)

    def free_attribute(self, parameter: Option, attribute: str) -> Option:
        """An attribute of a free parameter (``flags_obj.dtype``): free too, keyed by the
        parameter's key and the attribute."""
        shown = f"{parameter.shown}.{attribute}"
        return self._make(f"{parameter.key}.{attribute}", shown=shown, kind=ANY, free=True)

    def flag(self, name: str) -> Option | None:
        """The absl flag ``name`` this module defines (``FLAGS.name``)."""
        fields = self._absl.get(name)
        return self._make(f"--{name}", **fields) if fields is not None else None

    def test(self, expr: cst.BaseExpression) -> Option:
        """The outcome of a test that cannot be folded, named by its code."""
        code = cst.Module([]).code_for_node(expr).strip()
        code = re.sub(r"\s+", " ", code)
        return self._make(f"?{code}", shown=code, kind=BOOL, test=True)


def free_prefix(scope: Scope) -> str:
    """The start of the keys of the free options of ``scope``'s parameters (see
    :meth:`Options.free`)."""
    from amplint.cases import function_path

    return f"~{function_path(scope) or id(scope.node)}:"


NOT_LITERAL = object()


def literal(expr: cst.BaseExpression | None):
    """The value of a literal (number, string, True/False/None); ``NOT_LITERAL`` otherwise."""
    if isinstance(expr, cst.Integer):
        return int(expr.evaluated_value)
    if isinstance(expr, cst.Float):
        return float(expr.evaluated_value)
    if isinstance(expr, cst.Name) and expr.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[expr.value]
    text = string_value(expr) if expr is not None else None
    return text if text is not None else NOT_LITERAL


def _kind_of(value: Constant) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUMBER
    return TEXT if isinstance(value, str) else ANY


def argparse_option(node: cst.Call) -> Option | None:
    """The option one ``add_argument`` call defines (read outside any module's index: what
    another module registers on a parser it is handed, see :mod:`amplint.registrations`)."""
    flag, dest = argparse_names(node)
    if dest is None:
        return None
    return Option(f"--{dest}", **_argparse_fields(node, flag or dest))


def _argparse_fields(node: cst.Call, flag: str) -> dict:
    """Option fields of one ``add_argument`` call."""

    def arg(keyword: str) -> cst.BaseExpression | None:
        return call_argument(node, None, keyword)

    action = string_value(arg("action"))
    default = literal(arg("default"))
    if default is NOT_LITERAL:
        default = None
    kind_name = (dotted(arg("type")) or "").rsplit(".", 1)[-1]
    type_node = arg("type")
    boolish = "bool" in kind_name.lower() or (
        isinstance(type_node, cst.Lambda) and "bool" in cst.Module([]).code_for_node(type_node)
    )
    if action in ("store_true", "store_false"):
        sets = action == "store_true"
        given = arg("default")
        return {
            "shown": flag,
            "kind": BOOL,
            "default": (not sets) if given is None else default,
            "sets": sets,
        }
    if (
        action is not None
        and "BooleanOptionalAction" in action
        or (dotted(arg("action")) or "").endswith("BooleanOptionalAction")
    ):
        return {"shown": flag, "kind": BOOL, "default": bool(default), "sets": True}
    if boolish:
        return {"shown": flag, "kind": BOOL, "default": bool(default)}
    choices_node = arg("choices")
    choices = None
    if isinstance(choices_node, (cst.List, cst.Tuple, cst.Set)):
        values = [literal(element.value) for element in choices_node.elements]
        if all(v is not NOT_LITERAL for v in values):
            choices = tuple(values)
    if kind_name in ("int", "float"):
        kind = NUMBER
    elif kind_name == "str" or isinstance(default, str) or choices is not None:
        kind = TEXT
    else:
        kind = _kind_of(default) if default is not None else ANY
    return {"shown": flag, "kind": kind, "default": default, "choices": choices}


_ABSL_KINDS = {
    "DEFINE_bool": BOOL,
    "DEFINE_boolean": BOOL,
    "DEFINE_string": TEXT,
    "DEFINE_enum": TEXT,
    "DEFINE_integer": NUMBER,
    "DEFINE_float": NUMBER,
}


def _absl_flags(index: FileIndex) -> dict[str, dict]:
    """absl's ``flags.DEFINE_boolean('name', default, help)``, read as ``FLAGS.name``."""
    found = {}
    for site in index.calls:
        qualname = site.qualname or ""
        kind = _ABSL_KINDS.get(qualname.rsplit(".", 1)[-1])
        if kind is None or not qualname.startswith("absl."):
            continue
        name = string_value(site.arg(0, "name"))
        if name is None:
            continue
        default = literal(site.arg(1, "default"))
        default = None if default is NOT_LITERAL else default
        choices = None
        if qualname.endswith("DEFINE_enum"):
            listed = site.arg(2, "enum_values")
            if isinstance(listed, (cst.List, cst.Tuple)):
                values = [literal(e.value) for e in listed.elements]
                if all(v is not NOT_LITERAL for v in values):
                    choices = tuple(values)
        sets = True if kind == BOOL else None
        found[name] = {
            "shown": f"--{name}",
            "kind": kind,
            "default": default,
            "choices": choices,
            "sets": sets,
        }
    return found


def _has_configurator(index: FileIndex) -> bool:
    """``exec(open(...).read())`` or ``globals().update(...)`` at module level."""
    for site in index.calls_in(None):
        if site.name == "exec" or (site.name == "globals().update"):
            return True
        if site.method == "update" and isinstance(site.receiver, cst.Call):
            if dotted(site.receiver.func) in _CONFIGURATORS:
                return True
    return False


def _click_parameters(index: FileIndex) -> dict[tuple[int, str], dict]:
    """(id of the command function, parameter) -> option fields, from ``@click.option``."""
    found: dict[tuple[int, str], dict] = {}
    for function_id, decorators in index.decorators.items():
        for decorator in decorators:
            if not isinstance(decorator, cst.Call):
                continue
            qualname = index.resolve(dotted(decorator.func)) or ""
            if not qualname.endswith("click.option") and qualname != "click.decorators.option":
                continue
            names = [string_value(a.value) for a in decorator.args if a.keyword is None]
            names = [n for n in names if n]
            flags = [n for n in names if n.startswith("-")]
            plain = [n for n in names if not n.startswith("-")]
            if not flags:
                continue
            longs = [f for f in flags if f.startswith("--")] or flags
            parameter = plain[0] if plain else longs[0].lstrip("-").split("/")[0].replace("-", "_")
            keywords = {a.keyword.value: a.value for a in decorator.args if a.keyword is not None}
            default = literal(keywords.get("default"))
            default = None if default is NOT_LITERAL else default
            flag = longs[0].split("/")[0]
            if literal(keywords.get("is_flag")) is True or "/" in longs[0]:
                fields = {"shown": flag, "kind": BOOL, "default": bool(default), "sets": True}
            else:
                choice = keywords.get("type")
                choices = None
                if isinstance(choice, cst.Call) and (dotted(choice.func) or "").endswith("Choice"):
                    listed = choice.args[0].value if choice.args else None
                    if isinstance(listed, (cst.List, cst.Tuple)):
                        values = [literal(e.value) for e in listed.elements]
                        if all(v is not NOT_LITERAL for v in values):
                            choices = tuple(values)
                kind = TEXT if isinstance(default, str) or choices else _kind_of(default)
                fields = {"shown": flag, "kind": kind, "default": default, "choices": choices}
            found[(function_id, parameter)] = fields
    return found
