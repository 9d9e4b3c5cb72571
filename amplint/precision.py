"""The precision model: in which configurations of the script each piece of code runs in reduced
precision, and why.

Design (issue 11). One question for every rule: :meth:`PrecisionModel.precision_at` gives, for a
call, the list of :class:`Reduced` facts ``(condition, dtype, how, why)`` under which it computes
in float16 or bfloat16; an empty list means float32 in every configuration.

* Switches come from one table (:mod:`amplint.switches`): what turns reduced precision on, what
  it covers (the process, one object, a ``with`` block, one layer) and how it is read.
* Options and their values come from :mod:`amplint.options`; conditions over them are
  :class:`~amplint.conditions.Condition`; the value of a switch's dtype or ``enabled=`` argument
  in each configuration comes from :mod:`amplint.cases` (``net.cast(opt.dtype)`` is float16
  with ``--dtype float16``, whatever the option's default). A value amplint cannot determine
  turns nothing on: never a finding.
* A switch covers its scope only: a process-wide switch every line that runs with it; an object
  switch the model it casts — found by the call that built it — the layers of its class (and
  of the classes and builder functions it is made of), its outputs; an ``autocast`` block the
  code in it, the functions it calls, and the models called there. Code runs in the
  configurations its ``if`` tests and its callers' allow (:meth:`Evaluator.runs`).
* Across modules, the project pass hands each module a :class:`~amplint.project.Context`:
  spreads from the modules that import it (all of it for a process-wide switch, the classes a
  model is built from for an object switch) under the importer's conditions.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

import libcst as cst

from amplint.cases import (
    UNKNOWN,
    DType,
    Evaluator,
    Foreign,
    Made,
    Namespace,
    Symbol,
    dtype_meaning,
    function_path,
    positional_parameters,
    spelled,
)
from amplint.conditions import ALWAYS, NEVER, Condition, Option, within
from amplint.frameworks import deepspeed
from amplint.index import CALL, WITH, CallSite, FileIndex, Scope, dotted
from amplint.interface import (
    Json,
    Summary,
    condition_json,
    fact_from,
    fact_json,
    option_json,
    precise,
    substitute,
)
from amplint.options import NOT_LITERAL, Options, free_prefix, literal
from amplint.switches import (
    AUTOCAST,
    BLOCK,
    LAYER_DTYPE,
    OBJECT,
    PROCESS,
    WEIGHTS,
    Switch,
    recognise,
)

FLOAT16, BFLOAT16 = "float16", "bfloat16"
REDUCED = (FLOAT16, BFLOAT16)
_PASS_THROUGH = ("cuda", "cpu", "to", "train", "eval", "float", "requires_grad_", "share_memory")
# Calls whose result is the model given as their first argument, wrapped (data parallelism,
# compilation, a precision wrapper returning the model).
_WRAPPER = re.compile(
    r"(DataParallel|DDP|FSDP|FullyShardedDataParallel|Parallel\w*Model|^compile$|^prepare$"
    r"|^initialize$|^wrap$|Criterion$)"
)
_CONTAINERS = ("add", "append", "extend", "register_child", "add_module", "insert")
_INFERENCE = ("no_grad", "inference_mode", "predict_mode", "pause")
# Optimizer constructors: a module building one trains (its step may run elsewhere).
_OPTIMIZERS = (
    "torch.optim.",
    "mxnet.gluon.Trainer",
    "mxnet.optimizer.",
    "tensorflow.keras.optimizers.",
    "keras.optimizers.",
)
_OPTIMIZER_NAME = re.compile(r"(?i)optim")
# Functions that evaluate, decode with or export a model rather than train it.
_EVALUATION = re.compile(
    r"^_?(test|val|valid|validate|validation|eval|evaluate|evaluation|predict|prediction"
    r"|inference|infer|export|score|benchmark_inference|batch_score|recognize|translate"
    r"|decode|generate|beam_search|greedy_search|forward_one_step)(_|$)"
)
_NULL_CONTEXTS = ("nullcontext", "suppress")


@dataclass(frozen=True)
class Reduced:
    """Code runs in ``dtype`` in the configurations of ``condition``, because of ``why``
    (written at ``origin``); ``how`` is AUTOCAST (per-operation casts, losses in float32) or
    WEIGHTS (cast parameters: outputs are reduced too); ``framework`` is whose layers it
    concerns (a ``.half()`` makes no Keras layer float16)."""

    condition: Condition
    dtype: str
    how: str
    why: str
    origin: cst.CSTNode | None = None
    framework: str | None = None  # whose layers it concerns (None: any)
    local: bool = True  # False: brought in by another module of the project (a Spread)
    passed: bool = False  # of an object another module of the project passes in
    evaluation: bool = False  # switched in code that only evaluates (see PrecisionModel.evaluating)

    def narrowed(self, condition: Condition) -> Reduced | None:
        both = self.condition & condition
        if not both.possible:
            return None
        return dataclasses.replace(self, condition=both)


def union(facts: list[Reduced], dtypes: tuple[str, ...] = REDUCED) -> Condition:
    """The configurations in which any of ``facts`` (of these dtypes) holds."""
    result = NEVER
    for fact in facts:
        if fact.dtype in dtypes:
            result = result | fact.condition
    return result


def dtypes_of(facts: list[Reduced]) -> str:
    """``float16``, ``bfloat16`` or ``bfloat16/float16``."""
    return "/".join(sorted({fact.dtype for fact in facts if fact.dtype in REDUCED}))


class PrecisionModel:
    """The precision facts of one module."""

    def __init__(
        self,
        index: FileIndex,
        assume: str | None = None,
        spreads=(),
        path: str = "",
        received: dict | None = None,
        summaries: dict | None = None,
        registered: dict | None = None,
        frame: tuple[Scope, PrecisionModel] | None = None,
    ) -> None:
        self.index = index
        self.path = path  # the module's file: JSON configurations it names are beside it
        # (function, the module's model): this model reads one function in its own frame, to
        # summarise what calling it does (see local_summary)
        self.frame = frame[0] if frame is not None else None
        self._module = frame[1] if frame is not None else self
        options = frame[1].cases.options if frame is not None else Options(index, registered)
        self.cases = Evaluator(
            index, options, received=received, summaries=summaries, detached=self.frame
        )
        self._given = received
        if any(summary.attribute for summary in (summaries or {}).values()):
            self.cases.properties = self._property
        # other modules pass in or return objects with reduced weights (a float16 model)
        self.received = any(
            isinstance(value, Foreign) and any(fact.how == WEIGHTS for fact in value.facts)
            for given in (received or {}).values()
            for cases in given.values()
            for _, value in cases
        ) or any(
            fact_from(data).how == WEIGHTS
            for summary in (summaries or {}).values()
            for data in summary.returns
        )
        self.assume = assume
        self.spreads = tuple(spreads)
        if self._trains_here:  # a module training its own models: another module casting
            # its instances for inference (an export, a benchmark) does not make these float16
            self.spreads = tuple(s for s in self.spreads if s.trains or s.how != WEIGHTS)
        # what calling a function of another module does, by the name this module calls it
        self.summaries: dict[str, Summary] = summaries or {}
        self._blocks: dict[int, list[Reduced]] = {}
        self._chains: dict[int, list[tuple[Condition, Root]]] = {}  # see _chain
        self._chaining: set[int] = set()
        self._local: dict[int, Summary | None] = {}  # see local_summary

    # ---- switches -------------------------------------------------------------------------
    @functools.cached_property
    def switches(self) -> list[tuple[Switch, CallSite, list[Reduced]]]:
        """Every switch call of the module with what it turns on, where."""
        found = []
        for site in self._calls:
            for switch in recognise(site.qualname, site.method):
                facts = self._read(switch, site)
                if facts is not None:
                    found.append((switch, site, facts))
                    break
        return found

    def _read(self, switch: Switch, site: CallSite) -> list[Reduced] | None:
        """What one switch call turns on (None: the call is not that switch after all)."""
        if switch.method is not None and not _object_switch(switch, site, self.index):
            return None
        runs = self.cases.runs(site) if switch.scope != BLOCK else ALWAYS
        where = (site.scope, site.order)
        enabled = ALWAYS
        if switch.enabled is not None:
            flag = site.arg(*switch.enabled)
            if flag is not None:
                enabled = self.cases.truth(flag, *where)
        readings = self._dtype_readings(switch, site)
        facts = []
        for condition, dtype in readings:
            if dtype in REDUCED:
                both = condition & enabled & runs
                if both.possible:
                    why = _why(switch, site)
                    facts.append(
                        Reduced(
                            both,
                            dtype,
                            switch.how,
                            why,
                            site.node,
                            switch.framework,
                            evaluation=switch.method is not None
                            and self.evaluating(site, modes=False),
                        )
                    )
        return facts

    def _dtype_readings(self, switch: Switch, site: CallSite) -> list[tuple[Condition, str]]:
        where = (site.scope, site.order)
        reader = READERS[switch.reader]
        if switch.reader == "deepspeed":
            return deepspeed.precisions(site, self.cases, os.path.dirname(self.path))
        if switch.reader == "hf":
            found = []
            for keyword, dtype in (("fp16", FLOAT16), ("bf16", BFLOAT16)):
                flag = site.arg(None, keyword)
                if flag is not None:
                    found.append((self.cases.truth(flag, *where), dtype))
            return found
        if switch.reader == "to":
            return self._to_dtype(site)
        expr = site.arg(*switch.dtype) if switch.dtype is not None else None
        if expr is None:
            if switch.reader == "autocast":
                return [(ALWAYS, self._autocast_default(site))]
            return [(ALWAYS, switch.default)] if switch.default is not None else []
        readings = self.cases.read(expr, *where, reader)
        if switch.reader == "policy":  # a Policy object
            for condition, value in self.cases.cases(expr, *where):
                if isinstance(value, Made) and (value.site.name or "").endswith("Policy"):
                    inner = value.site.arg(0, "name")
                    for reading in self.cases.read(
                        inner, value.site.scope, value.site.order, reader
                    ):
                        both = reading[0] & condition
                        if both.possible:
                            readings.append((both, reading[1]))
        return readings

    def _autocast_default(self, site: CallSite) -> str:
        device = site.arg(0, "device_type")
        cases = self.cases.cases(device, site.scope, site.order) if device is not None else ()
        values = {value for _, value in cases}
        return BFLOAT16 if values and values <= {"cpu"} else FLOAT16

    def _to_dtype(self, site: CallSite) -> list[tuple[Condition, str]]:
        """``.to(dtype)``, ``.to(device, dtype)``, ``.to(dtype=...)``: dtype objects only
        (``.to('cuda')`` is a device)."""
        found = []
        candidates = [a.value for a in site.node.args if a.keyword is None]
        keyword = site.arg(None, "dtype")
        if keyword is not None:
            candidates.append(keyword)
        for expr in candidates:
            for condition, value in self.cases.cases(expr, site.scope, site.order):
                if isinstance(value, DType):
                    found.append((condition, value.name))
        return found

    # ---- the process ------------------------------------------------------------------------
    @functools.cached_property
    def process(self) -> list[Reduced]:
        """What holds for every line of the module: process-wide switches, ``--assume-amp``, and
        what importers spread to the whole module."""
        facts = [f for _, found in self._process_sites for f in found]
        if self.assume:
            facts.append(Reduced(ALWAYS, self.assume, AUTOCAST, "--assume-amp"))
        for spread in self.spreads:
            if spread.names is None:
                facts.append(spread.fact())
        return facts

    def process_at(self, site: CallSite) -> list[Reduced]:
        """The process-wide facts in effect when ``site`` runs: switches that run before it in
        the order of this module's calls (``train(use_amp=False)`` before ``amp.init()`` stays
        float32), or whose order with it cannot be told."""
        facts = [fact for fact in self.process if fact.origin is None]
        for origin, found in self._process_sites:
            facts += self._after(origin, site, found)
        return facts

    @functools.cached_property
    def _process_sites(self) -> list[tuple[CallSite, list[Reduced]]]:
        """Calls that switch the process: process-wide switches, and calls of functions of
        other modules that run one (their summaries)."""
        found = [(site, facts) for switch, site, facts in self.switches if switch.scope == PROCESS]
        for site, summary, built in self._summary_sites:
            facts = self._summary_facts(site, summary, summary.process, built)
            if facts:
                found.append((site, facts))
        return found

    @functools.cached_property
    def _calls(self) -> list[CallSite]:
        """The calls this model reads: the module's, or those of the function of its frame
        and of the module's top level."""
        if self.frame is None:
            return self.index.calls
        return [
            site
            for site in self.index.calls
            if site.function is None or _within(site.scope, self.frame)
        ]

    @functools.cached_property
    def _summaries_at(self) -> dict[int, Summary]:
        return {id(site): summary for site, summary, _ in self._summary_sites}

    @functools.cached_property
    def _summary_sites(self) -> list[tuple[CallSite, Summary, CallSite | None]]:
        """Calls of project functions and methods that have a summary (of other modules, from
        the project pass; of this module's top-level functions, :meth:`local_summary`), with
        the call that built the object of a method (None for a function)."""
        found = []
        for site in self._calls:
            if self.frame is not None and site.function is None:
                continue  # the module's own calls, not the function's
            named = site.qualname or (site.name if self._star_imported(site) else None)
            if named in self.summaries:
                found.append((site, self.summaries[named], None))
                continue
            callee = self.index.local_callee(site) if site.qualname is None else None
            local = self._module.local_summary(callee) if callee is not None else None
            if local is not None:
                found.append((site, local, None))
                continue
            if site.receiver is None or not self.summaries:
                continue
            for built, target in self._classes_of(site.receiver, site.scope, site.order):
                summary = self.summaries.get(f"{target}.{site.method}")
                if summary is not None and not summary.attribute:
                    found.append((site, summary, built))
                    break
        return found

    def _summary_facts(
        self, site: CallSite | None, summary: Summary, facts, built: CallSite | None = None
    ) -> list[Reduced]:
        """A summary's facts at a call (``site``; None: a property read): its parameters
        replaced by what the call passes, a method's constructor parameters by what the call
        that built its object (``built``) passed."""
        if not facts:
            return []
        bound = self.cases.bound(site, summary, built)
        runs = self.cases.runs(site) if site is not None else ALWAYS
        named = (site.name or site.qualname) if site is not None else summary.where
        found = []
        for data in facts:
            fact = fact_from(data)
            condition = substitute(fact.condition, bound, self._own_parameter) & runs
            if condition.possible:
                why = f"{named}() ({fact.why})"
                origin = site.node if site is not None else fact.origin
                found.append(  # bound to this module's arguments: its own
                    dataclasses.replace(
                        fact, condition=condition, why=why, origin=origin, passed=False
                    )
                )
        return found

    def _own_parameter(self, option: Option) -> bool:
        """A parameter of the function this model summarises (a condition may keep it)."""
        return (
            self.frame is not None
            and option.free
            and option.key.startswith(free_prefix(self.frame))
        )

    def _property(self, expr: cst.Attribute, scope: Scope, order: int | None) -> list | None:
        """``builder.model`` for a property of a project class with a summary: the object it
        returns, with its facts over the arguments that built ``builder`` (None: not one)."""
        found = []
        for condition, value in self.cases.cases(expr.value, scope, order):
            qualname = value.site.qualname if isinstance(value, Made) else None
            target = f"{qualname}.{expr.attr.value}"
            summary = self.summaries.get(target) if qualname else None
            if summary is None or not summary.attribute:
                return None
            facts = self._summary_facts(None, summary, summary.returns, value.site)
            found.append((condition, Foreign(target, tuple(facts))))
        return found

    def _after(self, origin: CallSite, site: CallSite, found: list[Reduced]) -> list[Reduced]:
        if origin.function is None and site.function is None:
            return found if site.order > origin.order else []
        occurrences = []
        for runner in self.index.runners(origin):
            position = self.index.position(runner, origin)
            if position is None:
                continue
            chains = self.index.chains(runner)
            for i, (_, call) in enumerate(self.index.timeline(runner)):
                if call is site:
                    occurrences.append((i > position, chains[i]))
        if not occurrences:
            return found
        result = []
        for after, chain in occurrences:
            if after:
                runs = self.cases.runs_along(site, chain)
                result += [n for n in (f.narrowed(runs) for f in found) if n is not None]
        return result

    # ---- blocks -----------------------------------------------------------------------------
    def blocks_at(self, site: CallSite) -> list[Reduced]:
        """``autocast`` blocks active where ``site`` runs: around it, or around a call of its
        function (a few levels up)."""
        own = self._with_blocks(site.ancestors, site.scope)
        return own + self._function_blocks(site.function, 0)

    def _with_blocks(self, ancestors, scope: Scope) -> list[Reduced]:
        found = []
        for kind, node in ancestors:
            if kind != WITH:
                continue
            assert isinstance(node, cst.With)
            for item in node.items:
                found += self._context_manager(item.item, scope)
        # an inner autocast(enabled=False) turns an outer one off: keep the innermost reading
        return found

    def _context_manager(self, expr: cst.BaseExpression, scope: Scope) -> list[Reduced]:
        """What ``with expr:`` turns on: an autocast call, a name bound to one, a call of a name
        bound to ``torch.autocast`` itself or to a ``partial`` of it (``with amp_autocast():``,
        the call's arguments added to the partial's)."""
        site = self.index.site(expr)
        order = site.order if site is not None else None
        target = expr.func if isinstance(expr, cst.Call) and site is not None else expr
        if site is not None and recognise(site.qualname, site.method):
            return self._block_facts(site)
        found = []
        for condition, value in self.cases.cases(target, scope, order):
            if isinstance(value, Made):
                facts = self._block_facts(value.site, site)
            elif value is UNKNOWN and site is not None:
                facts = self._bound_switch(target, site)
            else:
                continue
            found += [n for n in (f.narrowed(condition) for f in facts) if n is not None]
        return found

    def _bound_switch(self, target: cst.BaseExpression, call: CallSite) -> list[Reduced]:
        """``amp_autocast = torch.cuda.amp.autocast`` ... ``with amp_autocast():``."""
        name = dotted(target)
        if name is None:
            return []
        facts = []
        for definition in self.cases.expressions(name, call.scope, call.order):
            bound = dotted(definition.expr) if definition.expr is not None else None
            qualname = self.index.resolve(bound, definition.scope) if bound else None
            for switch in recognise(qualname, None):
                if switch.scope == BLOCK:
                    read = self._read(switch, _Shifted(None, call))  # type: ignore[arg-type]
                    facts += [n for n in (f.narrowed(definition.condition) for f in read) if n]
        return facts

    def _block_facts(self, site: CallSite, call: CallSite | None = None) -> list[Reduced]:
        switches = recognise(site.qualname, site.method)
        if any(s.scope == BLOCK for s in switches):
            return next(
                (
                    found
                    for switch, s, found in self.switches
                    if s is site and switch.scope == BLOCK
                ),
                [],
            )
        if (site.qualname or "").endswith("partial") and site.node.args:  # partial(autocast, ...)
            inner = self.index.resolve(dotted(site.node.args[0].value), site.scope)
            for switch in recognise(inner, None):
                if switch.scope == BLOCK:
                    facts = self._read(switch, _Shifted(site, call))  # type: ignore[arg-type]
                    return facts or []
        return []

    def _function_blocks(self, function: cst.CSTNode | None, depth: int) -> list[Reduced]:
        if function is None or depth > 4:
            return []
        key = id(function)
        if key in self._blocks:
            return self._blocks[key]
        self._blocks[key] = []
        scope = next((s for s in self.cases._scopes() if s.node is function), None)
        found: list[Reduced] = []
        if scope is not None:
            for caller in self.cases.callers(scope):
                path = self.cases.path(caller.ancestors)
                for fact in self._with_blocks(caller.ancestors, caller.scope) + (
                    self._function_blocks(caller.function, depth + 1)
                ):
                    narrowed = fact.narrowed(path)
                    if narrowed is not None:
                        found.append(narrowed)
        self._blocks[key] = found
        return found

    def autocast_at(self, site: CallSite) -> Condition:
        """Where per-operation autocasting (MXNet's lists, torch autocast, apex O1, Keras
        policies) is on for ``site``: losses and softmax there compute in float32."""
        facts = [f for f in self.process_at(site) if f.how == AUTOCAST] + self.blocks_at(site)
        return union(facts)

    # ---- objects ----------------------------------------------------------------------------
    def roots(self, expr: cst.BaseExpression | None, scope: Scope, order: int | None):
        """The calls that built the object ``expr`` holds (through ``.cuda()``, ``.half()``,
        ``DataParallel(...)`` and the like), with the configurations it holds each in. An
        object no call of this module builds (a global never assigned here, a parameter
        nobody here passes, ``self.model`` set in several methods) is known by its name."""
        found: list[tuple[Condition, Root]] = []
        for condition, value in self.cases.cases(expr, scope, order):
            if isinstance(value, Made):
                found += within(self._made_chain(value, 0), condition)
            elif isinstance(value, Foreign):
                found.append((condition, value))
            elif value is UNKNOWN:
                key = self._name_key(expr, scope)
                if key is not None:
                    found.append((condition, key))
        return found

    def _name_key(self, expr: cst.BaseExpression | None, scope: Scope) -> str | None:
        name = dotted(expr) if expr is not None else None
        if name is None or self.index.resolve(name.split(".")[0], scope) is not None:
            return None
        if name.startswith("self."):
            owner: Scope | None = scope
            while owner is not None and owner.owner is None:
                owner = owner.parent
            return f"{name}@{owner.owner}" if owner is not None else None
        head = name.split(".")[0]
        binding: Scope | None = scope
        while binding is not None and not binding.is_local(head):
            binding = binding.parent
        return f"{name}@{id(binding) if binding is not None else 'module'}"

    def _made_chain(self, value: Made, depth: int) -> list[tuple[Condition, Root]]:
        """The chain of the object a call returned; an element of the tuple a function with a
        summary of its parts returns is that element (of any other call, the whole result:
        ``model, optimizer = amp.initialize(model, ...)``)."""
        summary = self._summaries_at.get(id(value.site)) if value.element is not None else None
        if summary is not None and summary.parts:
            return [(ALWAYS, Part(value.site, value.element))]  # type: ignore[arg-type]
        return self._chain(value.site, depth)

    def _chain(self, site: CallSite, depth: int) -> list[tuple[Condition, Root]]:
        """``site`` and the calls its object passes through (receivers of fluent calls,
        the first argument of data-parallel wrappers); computed once per call."""
        known = self._chains.get(id(site))
        if known is not None:
            return known
        if depth > 6 or id(site) in self._chaining:
            return [(ALWAYS, site)]
        self._chaining.add(id(site))
        try:
            found = self._chain_from(site, depth)
        finally:
            self._chaining.discard(id(site))
        self._chains[id(site)] = found
        return found

    def _chain_from(self, site: CallSite, depth: int) -> list[tuple[Condition, Root]]:
        found: list[tuple[Condition, Root]] = [(ALWAYS, site)]
        inner: cst.BaseExpression | None = None
        if site.receiver is not None and (
            site.method in _PASS_THROUGH or recognise(None, site.method)
        ):
            inner = site.receiver
        elif _WRAPPER.search((site.name or "").rsplit(".", 1)[-1]) and site.node.args:
            inner = site.arg(0, "model") or site.node.args[0].value
        if inner is not None:
            for condition, value in self.cases.cases(inner, site.scope, site.order):
                if isinstance(value, Made):
                    found += within(self._made_chain(value, depth + 1), condition)
        return found

    @functools.cached_property
    def _object_facts(self) -> dict[int, list[Reduced]]:
        """id(constructor call) -> what object switches, wrappers and blocks do to the objects
        it builds."""
        facts: dict[object, list[Reduced]] = {}

        def add(condition: Condition, root: Root, fact: Reduced) -> None:
            narrowed = fact.narrowed(condition)
            if narrowed is not None:
                facts.setdefault(_root_key(root), []).append(narrowed)

        for switch, site, found in self.switches:
            if switch.scope != OBJECT:
                continue
            for target in self._switched_objects(switch, site):
                for condition, root in target:
                    for fact in found:
                        add(condition, root, fact)
        for site, summary, built in self._summary_sites:  # what a project function returns
            for fact in self._summary_facts(site, summary, summary.returns, built):
                add(ALWAYS, site, fact)
            for element, part in enumerate(summary.parts):
                for fact in self._summary_facts(site, summary, part, built):
                    add(ALWAYS, Part(site, element), fact)
        for site in self._calls:  # models called inside autocast blocks
            if site.name is None or site.qualname is not None:
                continue
            blocks = self.blocks_at(site)
            if not blocks:
                continue
            for condition, root in self.roots(site.node.func, site.scope, site.order):
                for fact in blocks:
                    add(condition, root, fact)
        return facts

    def _switched_objects(self, switch: Switch, site: CallSite):
        """The objects an object switch applies to, as lists of (condition, root)."""
        where = (site.scope, site.order)
        if switch.method is not None:
            yield [(ALWAYS, site)] + self.roots(site.receiver, *where)
        elif switch.reader == "deepspeed":
            model = site.arg(None, "model")
            yield [(ALWAYS, site)] + (self.roots(model, *where) if model is not None else [])
        elif switch.reader in ("lightning", "hf", "accelerate"):
            yield from self._wrapped_models(switch, site)

    def _wrapped_models(self, switch: Switch, site: CallSite):
        """Models handed to a precision wrapper: ``trainer.fit(model)`` (Lightning),
        ``Trainer(model=model, args=...)`` (Hugging Face), ``accelerator.prepare(model, ...)``."""
        for call in self.index.calls:
            if switch.reader == "lightning" and call.method == "fit":
                models = [call.arg(0, "model")]
            elif switch.reader == "accelerate" and call.method == "prepare":
                models = [a.value for a in call.node.args if a.keyword is None]
            elif switch.reader == "hf" and (call.qualname or "").endswith("Trainer"):
                arguments = call.arg(None, "args") or call.arg(1, "args")
                made = self.cases.cases(arguments, call.scope, call.order) if arguments else ()
                if not any(isinstance(v, Made) and v.site is site for _, v in made):
                    continue
                yield [(ALWAYS, call)] + self.roots(call.arg(0, "model"), call.scope, call.order)
                continue
            else:
                continue
            owner = call.receiver
            made = self.cases.cases(owner, call.scope, call.order) if owner is not None else ()
            if not any(isinstance(v, Made) and v.site is site for _, v in made):
                continue
            for model in models:
                if model is not None:
                    yield self.roots(model, call.scope, call.order)

    def object_facts(self, root: Root) -> list[Reduced]:
        """What is done to the objects the call ``root`` builds (to an object another module
        passes in: what that module did)."""
        if isinstance(root, Foreign):
            return list(root.facts) + self._object_facts.get(_root_key(root), [])
        return self._object_facts.get(_root_key(root), [])

    def weights_of(self, callee: cst.BaseExpression, scope: Scope, order: int | None):
        """Facts of reduced *weights* of the model ``callee`` (its outputs are reduced); a part
        a model class is given to its constructor (``self.decoder = decoder``) is cast with
        the model: its weights are reduced wherever the code calling it is."""
        found = []
        site = self._calls_by_callee.get(id(callee))
        if site is not None and self._given_part(callee, scope):
            found += [fact for fact in self.precision_at(site) if fact.how == WEIGHTS]
        for condition, root in self.roots(callee, scope, order):
            for fact in self.object_facts(root):
                if fact.how == WEIGHTS:
                    narrowed = fact.narrowed(condition)
                    if narrowed is not None:
                        found.append(narrowed)
            if not isinstance(root, CallSite):
                continue
            for fact in self.precision_at(root):  # a layer of a model with reduced weights
                if fact.how == WEIGHTS:
                    narrowed = fact.narrowed(condition)
                    if narrowed is not None:
                        found.append(narrowed)
            for switch in recognise(root.qualname, root.method):  # Net().half() itself
                if switch.scope == OBJECT and switch.how == WEIGHTS:
                    for own in self._switch_facts(root):
                        narrowed = own.narrowed(condition)
                        if narrowed is not None:
                            found.append(narrowed)
        return _unique(found)

    @functools.cached_property
    def _calls_by_callee(self) -> dict[int, CallSite]:
        return {id(site.node.func): site for site in self.index.calls}

    def _given_part(self, callee: cst.BaseExpression, scope: Scope) -> bool:
        """``self.decoder`` in a method of a class that sets it only to a parameter of one of
        its methods (``self.decoder = decoder`` in ``__init__``, or None): a part the class
        is built from, registered with it (and cast with it)."""
        name = dotted(callee)
        if name is None or not name.startswith("self.") or name.count(".") != 1:
            return False
        owner = self.index.own_class("self", scope)
        info = self.index.classes.get(owner or "")
        if info is None:
            return False
        given = False
        for method in info.methods.values():
            for value in method.assigned.get(name, []):
                if isinstance(value, cst.Name) and value.value in method.params:
                    given = True
                elif literal(value) is not None:  # set to anything but a parameter or None
                    return False
        return given

    def _switch_facts(self, site: CallSite) -> list[Reduced]:
        return next((found for _, s, found in self.switches if s is site), [])

    # ---- layers -----------------------------------------------------------------------------
    def precision_at(self, site: CallSite) -> list[Reduced]:
        """The facts under which the code of ``site`` computes in reduced precision: a layer
        it constructs, an operation it runs."""
        facts = list(self.process) + self.blocks_at(site) + self._object_precision(site)
        own = self._layer_dtype(site)
        if own is not None:
            facts.append(own)
        named = [spread for spread in self.spreads if spread.names is not None]
        if named:
            owners = [root for _, root in self._owners(site) if isinstance(root, CallSite)]
            for spread in named:
                if any(self._defined_in(owner, spread.names) for owner in owners):
                    facts.append(spread.fact())
        runs = self.cases.runs(site)
        return _unique([n for n in (f.narrowed(runs) for f in facts) if n is not None])

    def _object_precision(self, site: CallSite) -> list[Reduced]:
        """What is done to the models ``site`` is part of (see :meth:`_owners`)."""
        facts = []
        for condition, root in self._owners(site):
            own = self._switch_facts(root) if isinstance(root, CallSite) else []
            for fact in self.object_facts(root) + own:
                narrowed = fact.narrowed(condition)
                if narrowed is not None:
                    facts.append(narrowed)
        return facts

    # ---- what crosses module boundaries (see amplint.interface) ---------------------------
    def summaries_out(self) -> dict[str, list]:
        """Summaries of this module's functions and of its classes' methods (by path: "build",
        "Builder.model") that return a reduced-precision object or switch the process, over
        their parameters (a method's also over its class's constructor parameters)."""
        found = {}
        for where, scope in self._summarised():
            init = None
            if scope.owner is not None:
                info = self.index.classes.get(scope.owner)
                init = info.methods.get("__init__") if info is not None else None
            keys = [f"~{where}:"] + ([f"~{scope.owner}.__init__:"] if init is not None else [])
            returns: list[Json] = []
            parts: tuple[tuple[Json, ...], ...] = ()
            if scope.owner is None:  # a function: read in its own frame
                local = self.local_summary(scope)
                if local is not None:
                    returns, parts = list(local.returns), local.parts
            else:
                for expr in scope.returns:
                    returns += self._returned_facts(expr, scope, keys)
            process = [
                fact_json(fact)
                for origin, facts in self._process_sites
                if origin.function is scope.node
                for fact in facts
                if _portable_fact(fact, keys)
            ]
            values = self._returned(scope, keys)
            if returns or parts or process or values:
                summary = Summary(
                    tuple(positional_parameters(scope)),
                    _defaults(keys, (scope, init)),
                    tuple(returns),
                    tuple(process),
                    values,
                    where,
                    tuple(positional_parameters(init)) if init is not None else (),
                    _is_property(scope, self.index),
                    parts,
                )
                found[where] = summary.to_json()
        return found

    def _returned_facts(self, expr: cst.BaseExpression, scope: Scope, keys: list[str]) -> list:
        """Facts (JSON) of the object a ``return`` of ``scope`` gives back, over parameters a
        caller can tell (``keys``, see :func:`_portable_fact`)."""
        found = []
        for condition, root in self.roots(expr, scope, None):
            own = self._switch_facts(root) if isinstance(root, CallSite) else []
            for fact in self.object_facts(root) + own:
                narrowed = fact.narrowed(condition)
                if narrowed is not None and _portable_fact(narrowed, keys):
                    found.append(fact_json(narrowed))
        return found

    def local_summary(self, scope: Scope) -> Summary | None:
        """What calling the top-level function ``scope`` of this module does to the object it
        returns (to each element of a tuple it returns), over its parameters; None when
        nothing reduces it (or for a method: its object's state is part of what it returns).
        Read in the function's own frame (its parameters free, wherever it is called), so that
        each call puts in what it passes and one caller's configurations never mix with
        another's."""
        key = id(scope)
        if key not in self._local:
            self._local[key] = None  # while it is read: a recursive call returns nothing known
            self._local[key] = self._summarise(scope)
        return self._local[key]

    def _summarise(self, scope: Scope) -> Summary | None:
        top_level = scope.owner is None and scope.parent is not None and scope.parent.node is None
        if not top_level or not scope.returns or not self._reduces_inside(scope):
            return None
        frame = PrecisionModel(
            self.index,
            path=self.path,
            received=self._given,
            summaries=self.summaries,
            frame=(scope, self),
        )
        keys = [free_prefix(scope)]
        returns: list[Json] = []
        parts: list[list[Json]] = []
        for expr in scope.returns:
            if not isinstance(expr, cst.Tuple):
                returns += frame._returned_facts(expr, scope, keys)
                continue
            parts += [[] for _ in range(len(expr.elements) - len(parts))]
            for element, part in zip(expr.elements, parts):
                part += frame._returned_facts(element.value, scope, keys)
        if not returns and not any(parts):
            return None
        return Summary(
            tuple(positional_parameters(scope)),
            _defaults(keys, (scope,)),
            _distinct(returns),
            where=function_path(scope) or "",
            parts=tuple(_distinct(part) for part in parts),
        )

    def _reduces_inside(self, scope: Scope) -> bool:
        """Whether a switch that turns something on (in the function or at the module's top
        level), or a call of a function that returns a reduced object, is in the function
        (else nothing it returns can be reduced)."""
        if any(
            facts and (site.function is None or _within(site.scope, scope))
            for _, site, facts in self.switches
        ):
            return True
        for site in self.index.calls_in(scope.node):
            if site.qualname in self.summaries:
                return True
            callee = self.index.local_callee(site)
            if callee is not None and callee is not scope and self.local_summary(callee):
                return True
        return False

    def _returned(self, scope: Scope, keys: list[str]) -> tuple[Json, ...]:
        """The dtypes and strings a function returns, where they depend on its parameters
        (``DTYPE_MAP[flags_obj.dtype]``) or on the options of this module, in portable form;
        nothing when any return is something else."""
        found = []
        for condition, value in self.cases.returned(scope):
            if not isinstance(value, (DType, str)) or not _portable_condition(condition, keys):
                return ()
            found.append([condition_json(condition), self._portable_value(value, 0)])
        if not any(data[0] == "dtype" for _, data in found):
            return ()
        return tuple(found)

    def _summarised(self) -> Iterator[tuple[str, Scope]]:
        """The module's functions and its classes' methods other callers can name (the
        constructor left out: it returns nothing), by path."""
        for name, scope in sorted(self.index.functions.items()):
            if scope.parent is not None and scope.parent.node is None:
                yield name, scope
        for owner, info in sorted(self.index.classes.items()):
            for name, scope in sorted(info.methods.items()):
                if name != "__init__" and scope.returns:
                    yield f"{owner}.{name}", scope

    def bindings_out(self) -> list[list]:
        """Every call of this module into another module of the project (its name as written
        here), with what it passes, per configuration: [target, {parameter: cases},
        condition]. Position keys ("0") stand for arguments passed by position. A call in
        evaluation code passes no objects (the callee runs them for inference there); reading
        a property of a project object (``net = builder.model``) is a call passing nothing."""
        found = []
        for site in self.index.calls:
            target = self._project_target(site) or self._overridable(site)
            if target is None:
                continue
            evaluating = self.evaluating(site)
            arguments: dict[str, list] = {}
            position = 0
            for argument in site.node.args:
                if argument.star:
                    break
                key = argument.keyword.value if argument.keyword is not None else str(position)
                if argument.keyword is None:
                    position += 1
                cases = self.portable(argument.value, site.scope, site.order, 0)
                if evaluating:
                    cases = [c for c in cases if c[1][0] not in ("obj", "result", "read")]
                if cases and (not target.startswith("@") or any(precise(v) for _, v in cases)):
                    arguments[key] = cases
            if arguments or not target.startswith("@"):
                found.append([target, arguments, condition_json(self.cases.runs(site))])
        for assign in self.index.assigns:
            value = assign.value
            if isinstance(value, cst.Attribute):
                for _, built_by in self._classes_of(value.value, assign.scope, assign.order):
                    path = self.cases.path(assign.ancestors) & self.cases.reach(assign.scope.node)
                    target = f"{built_by}.{value.attr.value}"
                    found.append([target, {}, condition_json(path)])
                    break
        return found

    def _project_target(self, site: CallSite) -> str | None:
        """The name a call of a project function or class (or a method of an object a
        project class built) has, as this module writes it; a name only a star import of
        the project can define as written (``default_train_fn``)."""
        if site.qualname is not None:
            return None if _external(site.qualname) or "." not in site.qualname else site.qualname
        if self._star_imported(site):
            return site.name
        if site.method is None or site.receiver is None:
            return None
        for _, built_by in self._classes_of(site.receiver, site.scope, site.order):
            return f"{built_by}.{site.method}"
        return None

    def _classes_of(
        self, receiver, scope: Scope, order: int | None
    ) -> Iterator[tuple[CallSite, str]]:
        """(the call that built it, its class as this module names it) for an object of a
        project class ``receiver`` holds."""
        for _, value in self.cases.cases(receiver, scope, order):
            qualname = value.site.qualname if isinstance(value, Made) else None
            if qualname and not _external(qualname):
                yield value.site, qualname

    def _star_imported(self, site: CallSite) -> bool:
        """A call of a plain name nothing in this module binds, with a star import of the
        project in the module (``from .utils import *``): the name is that module's."""
        func = site.node.func
        if not isinstance(func, cst.Name) or not any(
            not _external(module) for module in self.index.star_imports
        ):
            return False
        name = func.value
        scope: Scope | None = site.scope
        while scope is not None:
            if scope.is_local(name):
                return False
            scope = scope.parent
        return name not in self.index.classes and not hasattr(builtins, name)

    def _overridable(self, site: CallSite) -> str | None:
        """``@Trainer.train_one_epoch`` for ``cls.train_one_epoch(...)`` (``self.``) in a
        method of ``Trainer``: the call runs that method of whatever subclass ``cls`` is, so
        the project pass hands what it passes to the overrides in subclasses of other modules
        too (see :mod:`amplint.linkage`)."""
        receiver, method = site.receiver, site.method
        if method is None or not isinstance(receiver, cst.Name):
            return None
        owner = self.index.own_class(receiver.value, site.scope)
        if owner is None or self.index.method_of(owner, method) is None:
            return None
        return f"@{owner}.{method}"

    def portable(self, expr, scope: Scope, order: int | None, depth: int) -> list:
        """The cases of ``expr`` in portable form (values nothing is known of left out)."""
        found = []
        for condition, value in self.cases.cases(expr, scope, order):
            data = self._portable_value(value, depth)
            if data is None and value is UNKNOWN:
                data = self._global_of(expr, scope)
            if data is not None:
                found.append([condition_json(condition), data])
        if depth < 2:
            for condition, target, built in self._property_reads(expr, scope, order):
                made = self._arguments(built, depth + 1) if built is not None else None
                read = ["read", target, made]
                found.append([condition_json(condition), read])
        return found

    def _global_of(self, expr, scope: Scope) -> Json | None:
        """``["global", name]`` for a global of another module of the project
        (``imagenet_preprocessing.NUM_CLASSES``): the project pass reads its value there."""
        name = self.index.resolve(dotted(expr), scope)
        if name is None or "." not in name or _external(name):
            return None
        return ["global", name]

    def _property_reads(self, expr, scope: Scope, order: int | None):
        """(condition, property as this module names it, the call that built its object)
        for ``builder.model`` and a name assigned it: what the property returns is its
        module's to tell (see amplint.linkage)."""
        reads = []
        if isinstance(expr, cst.Attribute):
            reads.append((ALWAYS, expr, scope, order))
        elif isinstance(expr, cst.Name):
            for definition in self.cases.definitions(expr.value, scope, order):
                if isinstance(definition.expr, cst.Attribute):
                    where = (definition.scope, definition.order)
                    reads.append((definition.condition, definition.expr, *where))
        for condition, read, where, when in reads:
            classes = list(self._classes_of(read.value, where, when))
            for built, qualname in classes:
                yield condition, f"{qualname}.{read.attr.value}", built
            annotated = None if classes else _annotated_class(read.value, where, self.index)
            if annotated is not None:  # a parameter ``builder: factory.DatasetBuilder``
                yield condition, f"{annotated}.{read.attr.value}", None

    def _arguments(self, site: CallSite, depth: int) -> dict[str, list]:
        """What a call passes, portable, by position ("0") and keyword."""
        arguments = {}
        for position, argument in enumerate(a for a in site.node.args if a.keyword is None):
            arguments[str(position)] = self.portable(argument.value, site.scope, site.order, depth)
        for argument in site.node.args:
            if argument.keyword is not None:
                arguments[argument.keyword.value] = self.portable(
                    argument.value, site.scope, site.order, depth
                )
        return arguments

    def _portable_value(self, value, depth: int):
        if value is None or isinstance(value, (bool, int, float, str)):
            return ["const", value]
        if isinstance(value, DType):
            return ["dtype", value.name]
        if isinstance(value, Symbol):
            option = value.option
            if option.free:
                where, _, name = option.key[1:].rpartition(":")
                return ["param", where, name, self._position(where, name.partition(".")[0])]
            return ["opt", option_json(option)]
        if isinstance(value, Namespace):
            options = [[dest, option_json(option)] for dest, option in value.options]
            return ["ns", options, value.open]
        if isinstance(value, Foreign):
            enabled = condition_json(value.enabled) if value.enabled is not None else None
            return ["obj", value.kind, [fact_json(f) for f in value.facts], enabled]
        if not isinstance(value, Made):
            return None
        site = value.site
        if site.method in ("parse_args", "parse_known_args"):
            options = self.cases.options
            arguments = [[d, option_json(options.argument(d))] for d in self.index.arguments]
            return ["ns", arguments, False]
        facts = []
        for condition, root in self._made_chain(value, 0):
            own = self._switch_facts(root) if isinstance(root, CallSite) else []
            for fact in self.object_facts(root) + own:
                narrowed = fact.narrowed(condition)
                if narrowed is not None and not any(o.free for o in narrowed.condition.options):
                    facts.append(fact_json(narrowed))
        target = self._project_target(site)
        if target is not None and depth < 2:
            arguments = self._arguments(site, depth + 1)
            built = None  # a method's: what built its object
            if site.qualname is None and site.receiver is not None:
                for maker, _ in self._classes_of(site.receiver, site.scope, site.order):
                    built = self._arguments(maker, depth + 1)
                    break
            # facts: what this module did to it; the element of the tuple it returns it holds
            return ["result", target, arguments, facts, built, value.element]
        enabled = None
        if (site.name or "").endswith("GradScaler"):
            flag = site.arg(None, "enabled")
            condition = self.cases.truth(flag, site.scope, site.order) if flag else ALWAYS
            enabled = condition_json(condition)
        return ["obj", site.qualname or site.name or "", facts, enabled]

    def _position(self, where: str, name: str) -> int | None:
        """The position of parameter ``name`` of the function ``where`` among those a call
        fills by position (``self`` left out)."""
        owner, _, function = where.rpartition(".")
        if owner:
            info = self.index.classes.get(owner)
            scope = info.methods.get(function) if info is not None else None
        else:
            scope = self.index.functions.get(function)
        if scope is None:
            return None
        names = positional_parameters(scope)
        return names.index(name) if name in names else None

    def outgoing(self) -> list[tuple]:
        """What this module turns on in the modules it imports, as (module, names, dtype, how,
        framework, configurations, subclasses): process-wide switches in all of them (module
        None; not one depending on a parameter of a function here: the calls of that function
        spread it, with what they pass, see :meth:`amplint.linkage.Linkage.switches`); object
        switches and blocks in the classes and functions its models are built
        from; for a model whose class is chosen at run time (``model_class =
        dynamic_import(args.model_module)``), in every class of the project deriving from the
        type the module checks it against (``assert isinstance(model, ASRInterface)``,
        ``issubclass(model_class, LMInterface)``)."""
        found: dict[tuple, Condition] = {}

        def add(key: tuple, condition: Condition) -> None:
            found[key] = found[key] | condition if key in found else condition

        for fact in self.process:
            if fact.origin is not None and not any(o.free for o in fact.condition.options):
                key = (None, None, fact.dtype, fact.how, fact.framework, False, False)
                add(key, fact.condition)
        for site in self.index.calls:
            qualname = site.qualname
            if qualname is None or "." not in qualname or _external(qualname):
                continue
            facts = self._object_precision(site)
            if not facts:
                continue
            runs = self.cases.runs(site)
            module, name = qualname.rsplit(".", 1)
            for fact in facts:
                key = (
                    module,
                    (name,),
                    fact.dtype,
                    fact.how,
                    fact.framework,
                    fact.evaluation,
                    False,
                )
                add(key, fact.condition & runs)
        for base, site in self._declared_types():
            runs = self.cases.runs(site)
            module, name = base.rsplit(".", 1)
            for fact in self._object_precision(site):
                key = (module, (name,), fact.dtype, fact.how, fact.framework, fact.evaluation, True)
                add(key, fact.condition & runs)
        for owner, site in self._factories():
            runs = self.cases.runs(site)
            for fact in self._object_precision(site):
                key = (
                    None,
                    (owner,),
                    fact.dtype,
                    fact.how,
                    fact.framework,
                    fact.evaluation,
                    True,
                    site.method,
                )
                add(key, fact.condition & runs)
        return [
            (
                *key[:5],
                condition.describe(),
                key[6],
                self._trains and not key[5],  # a cast for evaluation only trains nothing
                key[7] if len(key) > 7 else None,  # the factory method (see _factories)
                json.dumps(condition_json(condition)),
            )
            for key, condition in sorted(found.items(), key=lambda item: repr(item[0]))
            if condition.possible
        ]

    def _factories(self) -> Iterator[tuple[str, CallSite]]:
        """(class, call) for objects a method builds through ``cls``/``self`` in a class of
        this module (``model = cls.build_model(args)``): subclasses elsewhere override that
        factory, and which one runs depends on the subclass (see :mod:`amplint.project`)."""
        for site in self.index.calls:
            receiver = site.receiver
            if site.method is None or not isinstance(receiver, cst.Name):
                continue
            owner = self.index.own_class(receiver.value, site.scope)
            if owner is not None:
                yield owner, site

    def _declared_types(self) -> Iterator[tuple[str, CallSite]]:
        """(project class, call) for objects built by a class chosen at run time whose type
        the module checks: ``isinstance(obj, Base)``, ``issubclass(cls, Base)``."""
        checks = []
        for site in self.index.calls:
            if site.name in ("isinstance", "issubclass") and len(site.node.args) == 2:
                checks.append((site.node.args[0].value, site.node.args[1].value, site))
        for target, declared, where in checks:
            base = self.index.resolve(dotted(declared) or "", where.scope)
            if not base or "." not in base or _external(base):
                continue
            name = dotted(target)
            for _, root in self.roots(target, where.scope, where.order):
                if isinstance(root, CallSite) and self._chosen_at_run_time(root):
                    yield base, root
            for site in self.index.calls:  # ``issubclass(model_class, Base)``
                if name and site.name == name and self._chosen_at_run_time(site):
                    yield base, site

    def _chosen_at_run_time(self, site: CallSite) -> bool:
        """A call of a class held in a variable (not a class or function named here)."""
        name = site.name or ""
        return (
            site.qualname is None
            and name not in self.index.classes
            and name not in self.index.functions
            and isinstance(site.node.func, cst.Name)
        )

    def _layer_dtype(self, site: CallSite) -> Reduced | None:
        expr = site.arg(*LAYER_DTYPE.dtype)  # type: ignore[misc]
        if expr is None:
            return None
        readings = self.cases.read(expr, site.scope, site.order, READERS["policy"])
        condition = union(
            [Reduced(c, d, WEIGHTS, "") for c, d in readings if d in REDUCED], REDUCED
        )
        dtypes = {d for _, d in readings if d in REDUCED}
        if not condition.possible:
            return None
        return Reduced(condition, min(dtypes), WEIGHTS, "dtype=", site.node)

    def forced_float32(self, site: CallSite, keyword: str = "dtype") -> bool:
        """A layer whose own ``dtype=`` is float32 in every configuration."""
        expr = site.arg(None, keyword)
        if expr is None:
            return False
        readings = self.cases.read(expr, site.scope, site.order, READERS["policy"])
        return bool(readings) and all(d == "float32" for _, d in readings)

    def _owners(self, site: CallSite) -> list[tuple[Condition, Root]]:
        """The constructor calls whose objects ``site`` is part of: itself, the containers it
        is added to, and — for code in a class or a builder function — the calls that build
        that class or call that function, transitively."""
        found: list[tuple[Condition, Root]] = []
        seen: set[int] = set()
        pending: list[tuple[Condition, Root]] = [(ALWAYS, site)]
        while pending and len(found) < 64:
            condition, current = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            found.append((condition, current))
            if not isinstance(current, CallSite):
                continue
            for container in self._containers(current):
                pending.append((condition, container))
            for builder in self._builders(current):
                pending.append((condition, builder))
        return found

    def _containers(self, site: CallSite) -> Iterator[Root]:
        """Calls that receive ``site``'s object as an argument (``net.add(layer)``: the net's
        constructor; ``nn.Sequential(layer)``: the Sequential)."""
        for kind, node in reversed(site.ancestors):
            if kind != CALL:
                continue
            outer = self.index.site(node)
            if outer is None:
                break
            if outer.method in _CONTAINERS and outer.receiver is not None:
                for _, root in self.roots(outer.receiver, outer.scope, outer.order):
                    yield root
            elif outer.qualname is not None or (outer.name or "")[:1].isupper():
                yield outer
            break

    def _builders(self, site: CallSite) -> Iterator[CallSite]:
        """For code in a method of class C: the calls ``C(...)`` of this module; for code in a
        function F: the calls of F."""
        scope: Scope | None = site.scope
        while scope is not None and scope.node is not None:
            if scope.owner is not None:
                info = self.index.classes.get(scope.owner)
                if info is not None:
                    yield from self._instantiations(info.node.name.value)
                return
            if isinstance(scope.node, cst.FunctionDef) and scope.parent is not None:
                if scope.parent.node is None:
                    yield from self.cases.callers(scope)
                    return
            scope = scope.parent

    def _instantiations(self, name: str) -> list[CallSite]:
        found = list(self.index.calls_named(name))
        for info in self.index.classes.values():  # subclasses build it too
            if name in info.bases and info.node.name.value != name:
                found += self.index.calls_named(info.node.name.value)
        return found

    def _defined_in(self, site: CallSite, names: frozenset[str]) -> bool:
        scope: Scope | None = site.scope
        while scope is not None and scope.node is not None:
            if scope.owner in names:
                return True
            if isinstance(scope.node, cst.FunctionDef) and scope.node.name.value in names:
                return True
            scope = scope.parent
        return False

    # ---- training or inference --------------------------------------------------------------
    def inference_only(self, site: CallSite) -> bool:
        """Code that computes no gradients to train with: under ``no_grad``,
        ``inference_mode``, ``predict_mode`` or ``set_grad_enabled(False)``; in a function
        decorated so, named as an evaluation (``validate``, ``test``, ``evaluate``,
        ``predict``, ``export``...) or putting its model in ``eval()`` mode, or in a top-level
        helper only such code of this module calls (and no other module); or in a module that
        never computes a gradient nor steps an optimizer."""
        return not self._trains or self.evaluating(site)

    def evaluating(self, site: CallSite, modes: bool = True, depth: int = 0) -> bool:
        """Code that evaluates, decodes with or exports a model (see :meth:`inference_only`),
        whether or not the module trains elsewhere; without ``modes``, a function putting its
        model in ``eval()`` mode is not enough (a main function validating between epochs)."""
        if self.no_grad(site.ancestors):
            return True
        scope: Scope | None = site.scope
        while scope is not None and scope.node is not None:
            if isinstance(scope.node, cst.FunctionDef):
                if _EVALUATION.match(scope.node.name.value):
                    return True
                for decorator in self.index.decorators.get(id(scope.node), []):
                    target = decorator.func if isinstance(decorator, cst.Call) else decorator
                    if (dotted(target) or "").rsplit(".", 1)[-1] in _INFERENCE:
                        return True
                calls = self.index.calls_in(scope.node) if modes else []
                if any(_eval_mode(c, self.index) for c in calls) and not any(
                    c.method == "train" for c in calls
                ):
                    return True
                if depth < 3 and self._evaluation_helper(scope, modes, depth):
                    return True
            scope = scope.parent
        return False

    def _evaluation_helper(self, scope: Scope, modes: bool, depth: int) -> bool:
        """A top-level function only evaluation code of this module calls (a method may be
        run through its object from anywhere: ``model(x)`` runs ``forward``)."""
        top_level = scope.owner is None and scope.parent is not None and scope.parent.node is None
        if not top_level or function_path(scope) in self.cases.received:
            return False  # another module calls it too
        callers = self.cases.callers(scope)
        return bool(callers) and all(self.evaluating(c, modes, depth + 1) for c in callers)

    def in_unit_test(self, site: CallSite) -> bool:
        """Code of a unit test (``def test_...``, a method of a ``Test...`` class, a helper only
        tests call, a ``test_*.py`` file): it checks that a layer works in float16, it neither
        trains nor serves a model."""
        name = os.path.basename(self.path)
        if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
            return True
        scope: Scope | None = site.scope
        while scope is not None and scope.node is not None:
            if isinstance(scope.node, cst.FunctionDef) and scope.node.name.value.startswith("test"):
                return True
            if scope.owner is not None and scope.owner.startswith("Test"):
                return True
            scope = scope.parent
        return False

    def no_grad(self, ancestors) -> bool:
        """Inside ``with torch.no_grad()``, ``inference_mode()``, ``autograd.predict_mode()``,
        ``autograd.pause()`` or ``set_grad_enabled(False)``: nothing there records gradients."""
        for kind, node in ancestors:
            if kind != WITH:
                continue
            assert isinstance(node, cst.With)
            for item in node.items:
                inner = self.index.site(item.item)
                name = (inner.name if inner is not None else dotted(item.item)) or ""
                last = name.rsplit(".", 1)[-1]
                if last in _INFERENCE or (
                    last == "set_grad_enabled" and inner is not None and _false(inner)
                ):
                    return True
        return False

    @functools.cached_property
    def _trains(self) -> bool:
        """Whether the module computes a gradient, builds or steps an optimizer anywhere, or
        a module that does runs it in reduced precision."""
        return self._trains_here or any(spread.trains for spread in self.spreads)

    @functools.cached_property
    def _trains_here(self) -> bool:
        return any(
            call.method in ("backward", "step", "apply_gradients", "minimize", "gradient", "fit")
            or (call.name or "").endswith("autograd.backward")
            or (call.qualname or "").startswith(_OPTIMIZERS)
            or _optimizer_of_parameters(call)
            for call in self.index.calls
        )


def _optimizer_of_parameters(call: CallSite) -> bool:
    """An optimizer class chosen at run time built over a model's parameters:
    ``optim_class(model.parameters(), **args.optim_conf)``."""
    if not _OPTIMIZER_NAME.search((call.name or "").rsplit(".", 1)[-1]):
        return False
    for argument in call.node.args:
        value = argument.value
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            if value.func.attr.value in ("parameters", "collect_params"):
                return True
    return False


_FRAMEWORKS = frozenset(
    "torch mxnet tensorflow keras tf_keras numpy jax scipy sklearn transformers accelerate "
    "deepspeed apex lightning pytorch_lightning timm torchvision".split()
)


def _external(qualname: str) -> bool:
    """A name of the standard library or of a framework: never a module of the project."""
    head = qualname.lstrip(".").split(".")[0]
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    return not qualname.startswith(".") and (head in _FRAMEWORKS or head in stdlib)


def _defaults(keys: list[str], scopes: tuple[Scope | None, ...]) -> dict[str, Json]:
    """The literal defaults of the parameters of ``scopes`` (a function, a method's class
    constructor), as portable cases keyed by option key (``keys``: each scope's prefix)."""
    defaults = {}
    for key, owner in zip(keys, scopes):
        for param, default in owner.params.items() if owner is not None else ():
            constant = literal(default)
            if constant is not NOT_LITERAL:
                defaults[key + param] = [[condition_json(ALWAYS), ["const", constant]]]
    return defaults


def _distinct(facts: list[Json]) -> tuple[Json, ...]:
    """JSON facts without repeats, in their order."""
    return tuple(json.loads(text) for text in dict.fromkeys(map(json.dumps, facts)))


def _within(scope: Scope | None, function: Scope) -> bool:
    """Whether code of ``scope`` is inside ``function`` (nested functions too)."""
    while scope is not None:
        if scope is function:
            return True
        scope = scope.parent
    return False


def _portable_fact(fact: Reduced, keys: list[str]) -> bool:
    """A fact whose free options are all parameters a caller can tell (their keys start with
    one of ``keys``: the function's, its class constructor's)."""
    return _portable_condition(fact.condition, keys)


def _portable_condition(condition: Condition, keys: list[str]) -> bool:
    return all(option.key.startswith(tuple(keys)) for option in condition.options if option.free)


_PROPERTIES = ("property", "cached_property")


def _annotated_class(expr, scope: Scope, index: FileIndex) -> str | None:
    """The project class a parameter is annotated with (``dataset_builder:
    dataset_factory.DatasetBuilder``) as this module names it; None for anything else."""
    if not isinstance(expr, cst.Name):
        return None
    current: Scope | None = scope
    while current is not None and expr.value not in current.params:
        if expr.value in current.assigned or expr.value in current.rebound:
            return None
        current = current.parent
    if current is None or not isinstance(current.node, cst.FunctionDef):
        return None
    params = current.node.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == expr.value and param.annotation is not None:
            qualname = index.resolve(dotted(param.annotation.annotation), current)
            if qualname and "." in qualname and not _external(qualname):
                return qualname
    return None


def _is_property(scope: Scope, index: FileIndex) -> bool:
    """A method read as an attribute (``@property``, ``@cached_property``)."""
    decorators = index.decorators.get(id(scope.node), [])
    return any((dotted(d) or "").rsplit(".", 1)[-1] in _PROPERTIES for d in decorators)


def _eval_mode(site: CallSite, index: FileIndex) -> bool:
    """``model.eval()``: a model put in evaluation mode (not ``self.eval()`` of a class of
    this module defining its own ``eval`` step)."""
    if site.method != "eval" or site.node.args:
        return False
    if dotted(site.receiver) == "self":
        scope: Scope | None = site.scope
        while scope is not None and scope.owner is None:
            scope = scope.parent
        info = index.classes.get(scope.owner or "") if scope is not None else None
        return info is None or "eval" not in info.methods
    return True


def _false(site: CallSite) -> bool:
    argument = site.arg(0, "mode")
    return isinstance(argument, cst.Name) and argument.value == "False"


@dataclass(frozen=True)
class Part:
    """The element at ``element`` of the tuple the call ``site`` returns (``model`` in
    ``model, transform = build()``)."""

    site: CallSite
    element: int


# the call that built an object, an element of a tuple a call returned, its name (see
# roots), or an object another module passes in
Root = Union[CallSite, Part, str, Foreign]


def _root_key(root: Root) -> object:
    if isinstance(root, Foreign):
        return ("foreign", root)
    return root if isinstance(root, (str, Part)) else id(root)


class _Shifted:
    """A call standing for an autocast call: ``partial(torch.autocast, ...)`` (its arguments
    after the first), then the call of it (``amp_autocast(enabled=...)``), whose keywords win."""

    def __init__(self, partial: CallSite | None, call: CallSite | None) -> None:
        site = partial or call
        assert site is not None
        own = list(partial.node.args[1:]) if partial is not None else []
        added = list(call.node.args) if call is not None and call is not partial else []
        self._arguments = [*own, *added]
        self.node = site.node.with_changes(args=self._arguments)
        self.scope, self.order = site.scope, site.order
        self.ancestors, self.function = site.ancestors, site.function
        self.qualname, self.method, self.name = None, None, site.name
        self.statement = site.statement

    def arg(self, index, keyword):
        found, position = None, 0
        for argument in self._arguments:
            if argument.keyword is not None:
                if keyword is not None and argument.keyword.value == keyword:
                    found = argument.value
            elif index is not None and position == index:
                found = found if found is not None else argument.value
                position += 1
            else:
                position += 1
        return found


def _object_switch(switch: Switch, site: CallSite, index: FileIndex) -> bool:
    """A method call that really is that switch on a model (not ``F.cast(x, ...)``, a
    ``.half()`` for a checkpoint, ``.to('cuda')``)."""
    if site.receiver is None:
        return False
    receiver = dotted(site.receiver)
    if receiver is not None and index.resolve(receiver.split(".")[0], site.scope) is not None:
        return False  # a module function: mx.nd.cast(x, dtype), torch.Tensor.half
    if switch.method == "cast":
        return len(site.node.args) == 1
    if switch.method in ("half", "bfloat16"):
        return not site.node.args and not half_for_storage(site)
    return switch.method == "to"


def half_for_storage(site: CallSite) -> bool:
    """``.half().float()`` round trips and ``.half()`` for a checkpoint are not float16 training."""
    for kind, node in reversed(site.ancestors):
        if kind != CALL:
            continue
        assert isinstance(node, cst.Call)
        func = node.func
        if isinstance(func, cst.Attribute) and func.value is site.node:
            if func.attr.value in ("float", "state_dict", "numpy", "cpu", "save"):
                return True
        name = dotted(func)
        if name is not None and name.rsplit(".", 1)[-1] in ("save", "save_file", "save_parameters"):
            return True
    return False


def _why(switch: Switch, site: CallSite) -> str:
    if switch.method is not None and site.receiver is not None:
        receiver = dotted(site.receiver)
        if receiver is not None:
            return f"{receiver}.{switch.method}()"
    return switch.what


def _unique(facts: list[Reduced]) -> list[Reduced]:
    seen, found = set(), []
    for fact in facts:
        key = (fact.condition, fact.dtype, fact.how, fact.why)
        if key not in seen:
            seen.add(key)
            found.append(fact)
    return found


# ---- readers: what a switch's argument means -----------------------------------------------
@spelled("mixed_float16", "mixed_bfloat16", "float32")
def _policy(value: object) -> str | None:
    if isinstance(value, str):
        text = value.lower()
        if text in ("mixed_float16", "float16"):
            return FLOAT16
        if text in ("mixed_bfloat16", "bfloat16"):
            return BFLOAT16
        if text in ("float32", "float64"):
            return "float32"
    return None


@spelled("O1", "O2", "O0")
def _apex(value: object) -> str | None:
    if value in ("O1", "O2", "O3"):
        return FLOAT16
    return "float32" if value == "O0" else None


@spelled("16-mixed", "bf16-mixed", "32")
def _lightning(value: object) -> str | None:
    text = str(value).lower() if value is not None else ""
    if text in ("16", "16-mixed", "16-true", "half"):
        return FLOAT16
    if text in ("bf16", "bf16-mixed", "bf16-true"):
        return BFLOAT16
    return "float32" if text in ("32", "32-true", "64", "64-true") else None


@spelled("fp16", "bf16", "no")
def _accelerate(value: object) -> str | None:
    if value == "fp16":
        return FLOAT16
    if value == "bf16":
        return BFLOAT16
    return "float32" if value in ("no", None) else None


READERS = {
    "dtype": dtype_meaning,
    "autocast": dtype_meaning,
    "to": dtype_meaning,
    "policy": _policy,
    "apex": _apex,
    "lightning": _lightning,
    "accelerate": _accelerate,
    "deepspeed": dtype_meaning,
    "hf": dtype_meaning,
}
