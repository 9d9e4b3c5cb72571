"""DeepSpeed: the precision its configuration turns on for the engine ``deepspeed.initialize``
returns.

The configuration is a dict (written in the call, or a name bound to a dict literal) or a JSON
file named by a string (written, or an option's default such as ``--deepspeed_config``);
``args=`` whose ``deepspeed_config`` option has a default names one too. Its ``"fp16"`` or
``"bf16"`` section with ``"enabled": true`` (or a value of the script's options) turns the
engine to that precision; ``"auto"`` (Hugging Face fills it in) and files that cannot be read
turn nothing on. JSON files are read as data (``json.load``), never run, and are part of the
cache key of the module naming them.
"""

from __future__ import annotations

import json
import os

import libcst as cst

from amplint.cases import Symbol
from amplint.conditions import ALWAYS, Condition, limit
from amplint.index import CallSite, dotted, string_value

SECTIONS = {"fp16": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"}
_MAX_BYTES = 1 << 20


def precisions(site: CallSite, evaluator, folder: str) -> list[tuple[Condition, str]]:
    """(configurations, dtype) that the configuration of ``deepspeed.initialize`` turns on."""
    where = (site.scope, site.order)
    config = site.arg(None, "config") or site.arg(None, "config_params")
    if config is None:
        arguments = site.arg(None, "args")
        name = dotted(arguments) if arguments is not None else None
        if name is None:
            return []
        config = cst.parse_expression(f"{name}.deepspeed_config")
        option = evaluator.options.argument("deepspeed_config")
        if option is None or not isinstance(option.default, str):
            return []
        return [
            (condition & limit(option, {option.default}), dtype)
            for condition, dtype in _file(option.default, folder)
        ]
    if isinstance(config, cst.Dict):
        return _literal(config, site, evaluator)
    found: list[tuple[Condition, str]] = []
    for condition, mapping in _dicts(config, site.scope, site.order, evaluator, 0):
        found += [(c & condition, d) for c, d in _literal(mapping, site, evaluator)]
    for condition, value in evaluator.cases(config, *where):
        if isinstance(value, str):
            found += [(condition & c, d) for c, d in _file(value, folder)]
        elif isinstance(value, Symbol) and isinstance(value.option.default, str):
            chosen = condition & limit(value.option, {value.option.default})
            found += [(chosen & c, d) for c, d in _file(value.option.default, folder)]
    return found


def _dicts(expr, scope, order, evaluator, depth: int):
    """Dict literals ``expr`` may be: itself, what a name is bound to, what a function of the
    module returns (``ds_config = get_ds_config(args)``)."""
    if depth > 3 or expr is None:
        return []
    if isinstance(expr, cst.Dict):
        return [(ALWAYS, expr)]
    found = []
    if isinstance(expr, cst.Call):
        site = evaluator.index.site(expr)
        callee = evaluator.index.local_callee(site) if site is not None else None
        if callee is not None:
            for returned in callee.returns:
                found += _dicts(returned, callee, None, evaluator, depth + 1)
        return found
    name = dotted(expr)
    if name is None:
        return []
    for definition in evaluator.definitions(name, scope, order):
        inner = _dicts(definition.expr, definition.scope, definition.order, evaluator, depth + 1)
        found += [(c & definition.condition, d) for c, d in inner]
    return found


def _literal(mapping: cst.Dict, site: CallSite, evaluator) -> list[tuple[Condition, str]]:
    found = []
    for element in mapping.elements:
        if not isinstance(element, cst.DictElement):
            continue
        dtype = SECTIONS.get(string_value(element.key) or "")
        if dtype is None or not isinstance(element.value, cst.Dict):
            continue
        enabled = next(
            (
                e.value
                for e in element.value.elements
                if isinstance(e, cst.DictElement) and string_value(e.key) == "enabled"
            ),
            None,
        )
        if enabled is None:
            found.append((ALWAYS, dtype))
        else:
            found.append((evaluator.truth(enabled, site.scope, site.order), dtype))
    return found


def _file(name: str, folder: str) -> list[tuple[Condition, str]]:
    """Sections of a JSON file enabled with ``true`` (anything else turns nothing on)."""
    path = os.path.join(folder, name)
    try:
        if os.path.getsize(path) > _MAX_BYTES:
            return []
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    found = []
    for key, dtype in SECTIONS.items():
        section = data.get(key)
        if isinstance(section, dict) and section.get("enabled") is True:
            found.append((ALWAYS, dtype))
    return found
