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

from amplint.conditions import Condition, within
from amplint.interface import (
    Summary,
    condition_from,
    condition_json,
    fact_from,
    fact_json,
    precise,
    substitute,
    values_from,
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
        subclasses: Callable[[tuple[str, str]], set[tuple[str, str]]] = lambda base: set(),
    ) -> None:
        self.calls = calls  # module path -> its bindings (amplint.precision.bindings_out)
        self.summaries = summaries  # module path -> function name -> summary JSON
        self.targets = targets  # (importer, dotted name) -> module paths
        self.imports = imports  # module path -> its imports as written
        self.defined = defined  # module path -> its top-level classes and functions
        self.subclasses = subclasses  # (module path, class) -> the classes deriving from it
        self._received: dict[Located, dict[str, list]] | None = None
        self._resolving: set = set()
        self._located: dict[tuple[str, str], Located | None] = {}
        self._parts: set[str] | None = None  # every name part of every call's target
        self._overriding: set[str] = set()  # modules with a subclass a ``@`` call may run
        self._named: set[Located] = set()  # functions a call names (not only as an override)

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
                for imported in self.imports(path):  # a package re-exporting the name
                    if imported.rpartition(".")[2] == head and imported != module:
                        tail = rest[len(head) :]
                        found = self.locate(path, imported + tail, depth + 1)
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
                    for found in self.callees(module, target):
                        if not target.startswith("@"):
                            self._named.add(found)
                        called = condition_from(condition)
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
        if kind == "result":
            _, target, arguments, done = value  # done: what the caller did to the object
            summary = self.summary(module, target)
            if summary is None or not summary.returns:
                return [(condition, ["obj", target, list(done), None])]
            bound = {}
            for position, name in enumerate(summary.params):
                cases = arguments.get(name) or arguments.get(str(position))
                if cases:
                    resolved = []
                    for case_condition, data in cases:
                        resolved += self._resolve(
                            condition_from(case_condition), data, module, depth + 1
                        )
                    bound[name] = values_from([[condition_json(c), d] for c, d in resolved])
                elif name in summary.defaults:
                    bound[name] = values_from(summary.defaults[name])
            facts = []
            for data in summary.returns:
                fact = fact_from(data)
                substituted = substitute(fact.condition, bound) & condition
                if substituted.possible:
                    facts.append(fact_json(_with_condition(fact, substituted)))
            return [(condition, ["obj", target, facts + list(done), None])]
        return []

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
