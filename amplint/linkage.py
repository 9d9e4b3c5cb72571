"""Calls across modules of the project, for the project pass: which function of which module a
call names (through package re-exports), what each function receives from its callers, and
the summaries each caller needs (see :mod:`amplint.interface`).

A value a caller only passes on (``["param", ...]``: what its own caller passes) is looked up in
what that function receives, a few calls deep; a value a project function returns
(``["result", ...]``) is that function's summary with the call's arguments put in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from amplint.conditions import Condition, within
from amplint.interface import (
    Summary,
    condition_from,
    condition_json,
    fact_from,
    fact_json,
    precise,
    substitute,
    value_from,
)

_DEPTH = 3
_MAX_CASES = 16
_MAX_OVERRIDES = 10  # subclasses of a class whose overrides a call through ``self`` may run
Located = tuple[str, str]  # (module path, function path: "train", "Trainer.__init__")


class Linkage:
    """Bindings and summaries of a project, resolved on demand."""

    def __init__(
        self,
        calls: dict[str, list],
        summaries: dict[str, dict[str, list]],
        targets: Callable[[str, str], list[str]],
        imports: Callable[[str], tuple[str, ...]],
        defined: Callable[[str], set[str]],
        aliases: Callable[[str], dict[str, str]],
        constants: Callable[[str], dict[str, Any]],
        subclasses: Callable[[tuple[str, str]], set[tuple[str, str]]] = lambda base: set(),
    ) -> None:
        self.calls = calls  # module path -> its bindings (amplint.precision.bindings_out)
        self.summaries = summaries  # module path -> function name -> summary JSON
        self.targets = targets  # (importer, dotted name) -> module paths
        self.imports = imports  # module path -> its imports as written
        self.defined = defined  # module path -> its top-level classes and functions
        self.aliases = aliases  # module path -> its names bound to imported functions
        self.constants = constants  # module path -> its globals written once as a literal
        self.subclasses = subclasses  # (module path, class) -> the classes deriving from it
        self._received: dict[Located, dict[str, list]] | None = None
        self._resolving: set = set()
        self._located: dict[tuple[str, str], Located | None] = {}
        self._parts: set[str] | None = None  # every name part of every call's target
        self._overriding: set[str] = set()  # modules with a subclass a ``@`` call may run
        self._named: set[Located] = set()  # functions a call names (not only as an override)

    def add(self, module: str, bindings: list) -> None:
        """More bindings of ``module`` (the namespaces it hands on, see
        :mod:`amplint.registrations`); what functions receive is collected again."""
        self.calls.setdefault(module, []).extend(bindings)
        self._received = self._parts = None

    def locate(self, importer: str, name: str, depth: int = 0) -> Located | None:
        """The function (or class constructor) ``name`` names in ``importer``."""
        if depth == 0:
            key = (importer, name)
            if key not in self._located:
                self._located[key] = self._locate(importer, name, 0)
            return self._located[key]
        return self._locate(importer, name, depth)

    def _locate(self, importer: str, name: str, depth: int) -> Located | None:
        if depth > _DEPTH:
            return None
        if "." not in name:  # a name of a star import (``from .utils import *``)
            for imported in self.imports(importer):
                if imported.endswith(".*"):
                    found = self.locate(importer, imported[:-1] + name, depth + 1)
                    if found is not None:
                        return found
            return None
        cut = len(name)
        while True:
            cut = name.rfind(".", 0, cut)
            if cut <= 0:
                return None
            module, rest = name[:cut], name[cut + 1 :]
            for path in self.targets(importer, module):
                head = rest.split(".")[0]
                if head in self.defined(path):
                    return path, rest if "." in rest else _function(rest, path, self)
                alias = self.aliases(path).get(head)
                if alias is not None:  # ``get_tf_dtype = _performance.get_tf_dtype``
                    found = self.locate(path, alias + rest[len(head) :], depth + 1)
                    if found is not None:
                        return found
                for imported in self.imports(path):  # a package re-exporting the name
                    if imported.rpartition(".")[2] == head and imported != module:
                        found = self.locate(path, imported + rest[len(head) :], depth + 1)
                    elif imported.endswith(".*"):  # ... through a star import
                        found = self.locate(path, imported[:-1] + rest, depth + 1)
                    else:
                        continue
                    if found is not None:
                        return found

    def callees(self, module: str, target: str) -> list[Located]:
        """The functions a call names: one function, or for ``@Class.method`` (a method called
        through ``self``/``cls``) that method in every subclass of ``Class`` in the project
        (none for a base class of many: a framework's, like a layer base class)."""
        if not target.startswith("@"):
            found = self.locate(module, target)
            return [found] if found is not None else []
        owner, _, method = target[1:].partition(".")
        derived = self.subclasses((module, owner))
        if len(derived) >= _MAX_OVERRIDES:  # a framework's base class: which one runs is open
            return []
        return [(path, f"{cls}.{method}") for path, cls in sorted(derived)]

    def received(self, located: Located) -> dict[str, list]:
        """What the callers pass to a function: parameter (name or position) -> cases as
        (Condition, portable value)."""
        if self._received is None:
            self._received = {}
            for module, bindings in self.calls.items():
                for target, arguments, condition in bindings:
                    called = condition_from(condition)
                    for found in self.callees(module, target):
                        if not target.startswith("@"):
                            self._named.add(found)
                        given = self._received.setdefault(found, {})
                        for key, cases in arguments.items():
                            for case_condition, value in cases:
                                both = called & condition_from(case_condition)
                                if both.possible:
                                    given.setdefault(key, []).append((both, value, module))
        raw = self._received.get(located, {})
        resolved: dict[str, list] = {}
        for key, cases in raw.items():
            found = []
            for condition, value, module in cases:
                found += self._resolve(condition, value, module, 0)
            if found:
                resolved[key] = found[:_MAX_CASES]
        return resolved

    def _resolve(self, condition: Condition, value, module: str, depth: int) -> list:
        """A value as it reaches the callee: constants, options, objects, namespaces."""
        kind = value[0]
        if kind in ("const", "dtype", "opt", "obj", "ns"):
            return [(condition, value)]
        if depth >= _DEPTH:
            return []
        if kind == "global":  # ``imagenet_preprocessing.NUM_CLASSES`` of another module
            module_name, _, name = value[1].rpartition(".")
            for path in self.targets(module, module_name):
                written = self.constants(path)
                if name in written:
                    return [(condition, ["const", written[name]])]
            return []
        if kind == "param":
            _, where, name, position = value
            key = (module, (where, name, position))
            if key in self._resolving:
                return []
            self._resolving.add(key)
            try:
                given = self.received((module, where))
                return within(given.get(name, []) + given.get(str(position), []), condition)
            finally:
                self._resolving.discard(key)
        if kind in ("result", "read"):
            # done: what the caller did to the object; built: what built a method's object
            if kind == "read":  # a property: only what its summary tells is known
                _, target, built = value
                arguments, done, element = {}, [], None
            else:  # element: the part of a returned tuple the caller holds
                _, target, arguments, done, built, element = value
            summary = self.summary(module, target)
            if kind == "read" and (summary is None or not summary.attribute):
                return []
            returned = summary.facts(element) if summary is not None else ()
            if summary is not None and (summary.values or returned):
                passed = self._passed(arguments, module, depth)
                made = self._passed(built, module, depth) if built is not None else None
                bound = summary.bind(passed, made)
            if summary is not None and summary.values and element is None:  # a dtype
                return summary.returned(bound, condition)
            if not returned:
                return [(condition, ["obj", target, list(done), None])]
            facts = []
            for data in returned:
                fact = fact_from(data)
                substituted = substitute(fact.condition, bound) & condition
                if substituted.possible:
                    facts.append(fact_json(_with_condition(fact, substituted)))
            return [(condition, ["obj", target, facts + list(done), None])]
        return []

    def _passed(self, arguments: dict, module: str, depth: int):
        """What a call of ``module`` passes for a parameter (by position and name), as
        evaluator values (see :meth:`amplint.interface.Summary.bind`)."""

        def given(position: int, name: str) -> list | None:
            cases = arguments.get(name) or arguments.get(str(position))
            if not cases:
                return None
            resolved = []
            for case_condition, data in cases:
                where = condition_from(case_condition)
                resolved += self._resolve(where, data, module, depth + 1)
            return [(c, value_from(d)) for c, d in resolved]

        return given

    def switches(self) -> list[tuple[str, Any]]:
        """Calls of project functions that switch the process (their summaries' process
        facts): (calling module, fact over the caller's options). The caller's own check reads
        the same call; these spread the switch to the modules the caller imports."""
        named = {
            function.rpartition(".")[2]
            for functions in self.summaries.values()
            for function, data in functions.items()
            if Summary.from_json(data).process
        }
        found = []
        for module, bindings in sorted(self.calls.items()) if named else ():
            for target, arguments, condition in bindings:
                if target.rpartition(".")[2] not in named:
                    continue
                summary = self.summary(module, target)
                if summary is None:
                    continue
                bound = summary.bind(self._passed(arguments, module, 0))
                for data in summary.process:
                    fact = fact_from(data)
                    held = substitute(fact.condition, bound) & condition_from(condition)
                    if held.possible:
                        found.append((module, _with_condition(fact, held)))
        return found

    def summary(self, module: str, target: str) -> Summary | None:
        """The summary of the function ``target`` names in ``module``, if it has one."""
        found = self.locate(module, target) if not target.startswith("@") else None
        if found is None:
            return None
        data = self.summaries.get(found[0], {}).get(found[1])
        return Summary.from_json(data) if data is not None else None

    def modules(self) -> set[str]:
        """The modules whose context this linkage adds to: callers and called."""
        self.received(("", ""))  # collect once
        assert self._received is not None
        return set(self.calls) | {path for path, _ in self._received}

    def targeted(self, path: str) -> bool:
        """Whether a call of the project may name a function or class of ``path``: a name
        it defines is part of the call's target, as :meth:`locate` needs (a cheap test that
        spares collecting every call when checking a file nothing calls into)."""
        if self._parts is None:
            self._parts, self._overriding = set(), set()
            for module, bindings in self.calls.items():
                for target, _, _ in bindings:
                    if target.startswith("@"):
                        self._overriding.update(p for p, _ in self.callees(module, target))
                    else:
                        self._parts.update(target.split("."))
        return path in self._overriding or not self._parts.isdisjoint(self.defined(path))

    def context_of(self, path: str) -> tuple[str, str]:
        """(received, summaries) JSON for one module's context: what its functions receive,
        and the summaries of the functions it calls."""
        received = {}
        if self._received is not None or self.targeted(path):
            self.received(("", ""))
        for function in sorted(f for p, f in self._received or {} if p == path):
            given = self.received((path, function))  # {}: called, with no argument known
            if (path, function) not in self._named:  # an override: only objects matter
                given = {
                    k: cases for k, cases in given.items() if any(precise(v) for _, v in cases)
                }
                if not given:
                    continue
            received[function] = {
                key: [[condition_json(c), v] for c, v in cases] for key, cases in given.items()
            }
        summaries = {}
        for target, _, _ in self.calls.get(path, []):
            summary = self.summary(path, target)
            if summary is not None:
                summaries[target] = summary.to_json()
        return (
            json.dumps(received, sort_keys=True) if received else "",
            json.dumps(summaries, sort_keys=True) if summaries else "",
        )


def _function(name: str, path: str, linkage: Linkage) -> str:
    """A class is called through its constructor."""
    return f"{name}.__init__" if name[:1].isupper() else name


def _with_condition(fact, condition: Condition):
    import dataclasses

    return dataclasses.replace(fact, condition=condition)
