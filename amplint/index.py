"""One walk over a libcst tree that collects what every rule needs.

Instead of libcst's ScopeProvider/QualifiedNameProvider (about 7x the cost of the parse) the walk
tracks imports, scopes, assignments, calls and their enclosing blocks itself. Rules then query the
index; none of them walks the tree again.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import libcst as cst

# Kinds of enclosing blocks kept on a call's ancestor stack (``IF_*`` for ``if`` statements,
# ``CHOSEN_*`` for the branches of ``a if test else b``).
WITH, IF_BODY, IF_ELSE, CALL, COMP = "with", "if", "else", "call", "comprehension"
CHOSEN_BODY, CHOSEN_ELSE, HANDLER, LOOP = "chosen", "not chosen", "except", "loop"
_DTYPE = re.compile(r"^(?:b?float\d*|half|double|u?int\d*|bool|complex\d*)$")
_TIMELINE_LIMIT = 5000  # calls in one expanded timeline (helpers calling helpers fan out)


@dataclass(eq=False)
class Scope:
    """A function (or the module): its parameters' defaults and the names assigned in it."""

    node: cst.CSTNode | None
    parent: Scope | None
    params: dict[str, cst.BaseExpression | None] = field(default_factory=dict)
    assigned: dict[str, list[cst.BaseExpression]] = field(default_factory=dict)
    rebound: set[str] = field(default_factory=set)  # loop targets, augmented assignments, ...
    callee: str | None = None  # how callers name it: "build", or "Net" for Net.__init__
    positional: tuple[str, ...] = ()  # parameters callers fill by position (no self)
    returns: list[cst.BaseExpression] = field(default_factory=list)  # ``return <value>``s
    owner: str | None = None  # the class of a method
    loops: dict[str, cst.BaseExpression] = field(default_factory=dict)  # for-target -> iterable

    def is_local(self, name: str) -> bool:
        """Whether ``name`` is bound in this scope (parameter, assignment or rebinding)."""
        return name in self.params or name in self.assigned or name in self.rebound


@dataclass(eq=False)
class CallSite:
    """A call with its resolved name, enclosing scope and enclosing blocks (outermost first)."""

    node: cst.Call
    name: str | None  # the callee as written, dotted ("net.cast"), or None
    qualname: str | None  # the callee resolved through imports ("mxnet.contrib.amp.init")
    scope: Scope
    ancestors: tuple[tuple[str, cst.CSTNode], ...]
    order: int
    statement: cst.CSTNode | None = None  # the innermost statement holding the call

    @property
    def method(self) -> str | None:
        """``cast`` for ``net.cast(...)``; None for a call of a plain name."""
        func = self.node.func
        return func.attr.value if isinstance(func, cst.Attribute) else None

    @property
    def receiver(self) -> cst.BaseExpression | None:
        """``net`` for ``net.cast(...)``; None for a call of a plain name."""
        func = self.node.func
        return func.value if isinstance(func, cst.Attribute) else None

    def arg(self, index: int | None, keyword: str | None) -> cst.BaseExpression | None:
        """The argument at positional ``index`` or named ``keyword``, if given."""
        return call_argument(self.node, index, keyword)

    def loop_iter(self, name: str | None) -> cst.BaseExpression | None:
        """What the innermost ``for name in ...`` around the call runs over."""
        for kind, node in reversed(self.ancestors):
            if kind == LOOP and isinstance(node, cst.For) and isinstance(node.target, cst.Name):
                if node.target.value == name:
                    return node.iter
        return None

    def inside(self, kind: str) -> list[cst.CSTNode]:
        """Enclosing blocks of one kind, innermost first."""
        return [node for k, node in reversed(self.ancestors) if k == kind]

    @functools.cached_property
    def function(self) -> cst.CSTNode | None:
        """The innermost enclosing function (None at module level)."""
        scope: Scope | None = self.scope
        while scope is not None and isinstance(scope.node, cst.Lambda):
            scope = scope.parent
        return scope.node if scope is not None else None


@dataclass(eq=False)
class AssignSite:
    """``targets = value`` (also ``with ... as target``), or ``target[key] = value`` (``key``),
    with the blocks around it (as a call's ``ancestors``)."""

    targets: tuple[str, ...]
    value: cst.BaseExpression
    scope: Scope
    order: int
    ancestors: tuple[tuple[str, cst.CSTNode], ...] = ()
    key: cst.BaseExpression | None = None
    element: int | None = None  # ``a, b = f()``: the position of the target in the tuple


@dataclass(eq=False)
class ClassInfo:
    """A class defined in the module: its bases as written, its methods' scopes and the
    values its body assigns (class attributes: ``trainer = Trainer``)."""

    node: cst.ClassDef
    bases: tuple[str, ...]
    methods: dict[str, Scope] = field(default_factory=dict)
    attributes: dict[str, cst.BaseExpression] = field(default_factory=dict)


def dotted(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def string_value(node: cst.CSTNode | None) -> str | None:
    """The text of a plain string literal."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None  # bytes literals are not text
    return None


# Fields that never hold code (whitespace, punctuation, operators): the walk skips them.
_SKIPPED_FIELDS = re.compile(
    r"^(whitespace|leading_lines|lines_after|lpar|rpar|comma|semicolon|newline|header|footer"
    r"|colon|equal|dot|star|prefix|quote|operator|lbrace|rbrace|lbracket|rbracket|asynchronous"
    r"|indent|relative|arrow|default_indent|default_newline|encoding|has_trailing_newline)"
)


@dataclass(frozen=True)
class _Plan:
    """How the walk treats one node type: its code-holding fields and its handlers."""

    fields: tuple[str, ...]
    visit: Callable[[FileIndex, Any], Any] | None
    leave: Callable[[FileIndex, Any], None] | None
    field_visits: tuple[tuple[str, Callable | None, Callable | None], ...]


_PLANS: dict[type, _Plan] = {}


def _plan(kind: type) -> _Plan:
    plan = _PLANS.get(kind)
    if plan is None:
        names = tuple(f.name for f in dataclasses.fields(kind) if not _SKIPPED_FIELDS.match(f.name))
        prefix = kind.__name__
        field_visits = tuple(
            (
                name,
                getattr(FileIndex, f"visit_{prefix}_{name}", None),
                getattr(FileIndex, f"leave_{prefix}_{name}", None),
            )
            for name in names
        )
        plan = _Plan(
            names,
            getattr(FileIndex, f"visit_{prefix}", None),
            getattr(FileIndex, f"leave_{prefix}", None),
            field_visits,
        )
        _PLANS[kind] = plan
    return plan


class FileIndex:
    """Imports, scopes, calls, assignments and argparse defaults of one module.

    Built by one walk over the tree that reads node fields directly: libcst's own visitor
    rebuilds every node it passes, which costs as much as the parse.
    """

    def __init__(self, modules: dict[str, str] | None = None) -> None:
        # functions returning a module (a lazy import), by their resolved name -> the module
        self.modules = modules or {}
        # constants of other modules of the project, by their resolved name
        # (``.constants.DTYPE_FP16`` -> ``'float16'``; see amplint.borrowing)
        self.borrowed: dict[str, Any] = {}
        self.imports: dict[str, str] = {}
        self.star_imports: list[str] = []
        self._aliases: set[str] = set()  # module-level names bound to an import's attribute
        self.module_scope = Scope(None, None)
        self.calls: list[CallSite] = []
        self.assigns: list[AssignSite] = []
        self.argparse: dict[str, tuple[cst.BaseExpression, str]] = {}  # dest -> (default, flag)
        self.arguments: dict[str, tuple[CallSite, str]] = {}  # dest -> (add_argument, flag)
        self.by_node: dict[int, CallSite] = {}  # id(Call node) -> its site
        self.classes: dict[str, ClassInfo] = {}  # module-level and nested classes by name
        self.item_assigned: set[str] = set()  # names whose items are set: ``cfg['units'] = 64``
        self.functions: dict[str, Scope] = {}  # functions that are not methods, by name
        self.item_assigns: list[AssignSite] = []  # ``cfg['units'] = 64``
        self._stored: dict[tuple[str, int], list[AssignSite]] | None = None  # items_stored
        self._pending: list[AssignSite] = []  # assignments whose value is being walked
        self.tests: dict[int, tuple[Scope, int]] = {}  # id(If/IfExp) -> where its test runs
        self.decorators: dict[int, list[cst.BaseExpression]] = {}  # id(FunctionDef) -> them
        self._scope = self.module_scope
        self._stack: list[tuple[str, cst.CSTNode]] = []
        self._order = 0
        self._statement: cst.CSTNode | None = None
        self._classes: list[ClassInfo | None] = []
        self._by_name: dict[str, list[CallSite]] | None = None
        self._by_function: dict[int, list[CallSite]] | None = None
        self._argument_statements: dict[int, cst.CSTNode | None] | None = None
        self._timelines: dict[int, list[tuple[CallSite, CallSite]]] = {}
        self._chains: dict[int, list[tuple[CallSite, ...]]] = {}

    @classmethod
    def build(cls, module: cst.Module, modules: dict[str, str] | None = None) -> FileIndex:
        """The index of a parsed module (``modules``: see :attr:`modules`)."""
        index = cls(modules)
        index._walk(module)
        index._collect_argparse()
        index._through_class_attributes()
        return index

    def _walk(self, node: cst.CSTNode) -> None:
        plan = _PLANS.get(type(node)) or _plan(type(node))
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            outer, self._statement = self._statement, node
            self._walk_fields(node, plan)
            self._statement = outer
        else:
            self._walk_fields(node, plan)

    def _walk_fields(self, node: cst.CSTNode, plan: _Plan) -> None:
        if plan.visit is not None and plan.visit(self, node) is False:
            return
        for name, before, after in plan.field_visits:
            value = getattr(node, name)
            if before is not None:
                before(self, node)
            if isinstance(value, cst.CSTNode):
                self._walk(value)
            elif isinstance(value, (tuple, list)):
                for item in value:
                    if isinstance(item, cst.CSTNode):
                        self._walk(item)
            if after is not None:
                after(self, node)
        if plan.leave is not None:
            plan.leave(self, node)

    def site(self, node: cst.CSTNode | None) -> CallSite | None:
        """The call site of a Call node of this module."""
        return self.by_node.get(id(node)) if isinstance(node, cst.Call) else None

    def calls_named(self, name: str) -> list[CallSite]:
        """Calls whose callee is written ``name`` (e.g. every ``Net(...)``)."""
        if self._by_name is None:
            self._by_name = {}
            for site in self.calls:
                if site.name is not None:
                    self._by_name.setdefault(site.name, []).append(site)
        return self._by_name.get(name, [])

    def local_callee(self, site: CallSite) -> Scope | None:
        """The function of this module a call runs: ``helper(...)``, ``self.helper(...)``,
        ``cls.helper(...)`` (also inherited from a class of this module), ``Runner.helper(...)``
        and ``cls.runner.helper(...)`` for a class attribute ``runner = Runner``."""
        name = site.name
        if name is None:
            return None
        if "." not in name:
            return None if self.resolve(name, site.scope) else self.functions.get(name)
        receiver, _, method = name.rpartition(".")
        owner = self.own_class(receiver, site.scope)
        if owner is None and "." not in receiver:
            if receiver in self.classes and not site.scope.is_local(receiver):
                owner = receiver  # Runner.helper(...)
            else:  # runner = Runner(); runner.setup()
                values = self.values_of(receiver, site.scope)
                if len(values) == 1 and isinstance(values[0], cst.Call):
                    owner = dotted(values[0].func)
        if owner is None and receiver.count(".") == 1:  # cls.runner.helper(...)
            held = self.class_attribute(receiver, site.scope)
            owner = dotted(held) if held is not None else None
        return self.method_of(owner, method)

    def method_of(self, owner: str | None, method: str, depth: int = 0) -> Scope | None:
        """The method ``method`` of the class ``owner`` of this module, also inherited from a
        base class of this module."""
        info = self.classes.get(owner or "")
        if info is None or depth > 5:
            return None
        if method in info.methods:
            return info.methods[method]
        for base in info.bases:
            found = self.method_of(base, method, depth + 1)
            if found is not None:
                return found
        return None

    def own_class(self, receiver: str, scope: Scope | None) -> str | None:
        """The class whose method ``scope`` is (or is nested in) when ``receiver`` is that
        method's first parameter (``self``, ``cls``)."""
        while scope is not None and scope.owner is None:
            scope = scope.parent
        if scope is None or not isinstance(scope.node, cst.FunctionDef):
            return None
        first = next(iter(scope.params), None)
        return scope.owner if first == receiver else None

    def class_attribute(self, name: str, scope: Scope) -> cst.BaseExpression | None:
        """What ``cls.runner`` (``self.runner``) holds when the class (or a base class of this
        module) assigns ``runner = <a class or function>`` in its body and no method sets it."""
        receiver, _, attribute = name.partition(".")
        owner = self.own_class(receiver, scope)
        pending = [owner] if owner is not None else []
        for _ in range(6):
            info = self.classes.get(pending.pop(0)) if pending else None
            if info is None:
                return None
            if any(
                f"{method.params and next(iter(method.params))}.{attribute}" in method.assigned
                for method in info.methods.values()
            ):
                return None  # a method sets it
            value = info.attributes.get(attribute)
            if value is not None:
                return value if dotted(value) is not None else None
            pending.extend(info.bases)
        return None

    def _through_class_attributes(self) -> None:
        """Calls of a method of a class a class attribute holds (``cls.trainer.run(...)`` with
        ``trainer = Trainer``, imported): resolved as ``Trainer.run(...)``."""
        for site in self.calls:
            name = site.name
            if site.qualname is not None or name is None or name.count(".") != 2:
                continue
            receiver, _, method = name.rpartition(".")
            held = self.class_attribute(receiver, site.scope)
            written = dotted(held) if held is not None else None
            resolved = self.resolve(written) if written is not None else None
            if resolved is not None:
                site.qualname = f"{resolved}.{method}"

    def calls_in(self, function: cst.CSTNode | None) -> list[CallSite]:
        """The calls whose innermost enclosing function is ``function`` (None: module level)."""
        if self._by_function is None:
            self._by_function = {}
            for site in self.calls:
                self._by_function.setdefault(id(site.function), []).append(site)
        return self._by_function.get(id(function), [])

    def timeline(self, function: cst.CSTNode | None) -> list[tuple[CallSite, CallSite]]:
        """The calls of ``function`` (None: module level) in the order they run, with the calls
        of this module's helpers expanded in place (a few levels deep, at most
        ``_TIMELINE_LIMIT`` calls); each is paired with the call of ``function`` itself that
        runs it."""
        found = self._timelines.get(id(function))
        if found is None:
            found = self._timelines[id(function)] = []
            chains: list[tuple[CallSite, ...]] = []
            self._expand(function, (function,), (), found, chains)
            self._chains[id(function)] = chains
        return found

    def chains(self, function: cst.CSTNode | None) -> list[tuple[CallSite, ...]]:
        """Parallel to :meth:`timeline`: for each entry, the calls that lead from
        ``function`` to it (empty for a call of ``function`` itself)."""
        self.timeline(function)
        return self._chains[id(function)]

    def position(self, function: cst.CSTNode | None, site: CallSite) -> int | None:
        """Where ``site`` first runs in ``function``'s timeline (None: it does not run there)."""
        timeline = self.timeline(function)
        return next((i for i, (_, called) in enumerate(timeline) if called is site), None)

    def runners(self, site: CallSite) -> list[cst.CSTNode | None]:
        """The function holding ``site`` and the functions of this module that run it through
        helper calls (a few levels up): the starting points of timelines that reach it."""
        found: list[cst.CSTNode | None] = [site.function]
        for function in found:
            if len(found) > 16 or not isinstance(function, cst.FunctionDef):
                continue
            name = function.name.value
            for caller in self.calls:
                if caller.name != name and caller.method != name:
                    continue
                callee = self.local_callee(caller)
                if callee is not None and callee.node is function:
                    if all(caller.function is not f for f in found):
                        found.append(caller.function)
        return found

    def _expand(self, function, active: tuple, chain: tuple, found: list, chains: list) -> None:
        for site in self.calls_in(function):
            if len(found) >= _TIMELINE_LIMIT:
                return
            found.append((chain[0] if chain else site, site))
            chains.append(chain)
            callee = self.local_callee(site)
            if callee is None or len(active) > 4 or any(callee.node is a for a in active):
                continue
            self._expand(callee.node, (*active, callee.node), (*chain, site), found, chains)

    def statement_of(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The statement holding a call or one of a call's arguments."""
        site = self.site(node)
        if site is not None:
            return site.statement
        if self._argument_statements is None:  # built once: findings on arguments can be many
            self._argument_statements = {}
            for site in self.calls:
                for argument in site.node.args:
                    self._argument_statements.setdefault(id(argument.value), site.statement)
        return self._argument_statements.get(id(node))

    def with_calls(self, site: CallSite) -> list[CallSite]:
        """Calls in the ``with`` headers whose bodies enclose ``site``, innermost first."""
        found = []
        for node in site.inside(WITH):
            assert isinstance(node, cst.With)
            for item in node.items:
                inner = self.site(item.item)
                if inner is not None:
                    found.append(inner)
        return found

    def values_of(self, name: str, scope: Scope) -> list[cst.BaseExpression]:
        """Every value assigned to ``name`` in the scope that binds it (innermost first)."""
        current: Scope | None = scope
        while current is not None:
            if name in current.assigned or name in current.params:
                return list(current.assigned.get(name, []))
            current = current.parent
        return []

    def items_stored(self, name: str, scope: Scope, order: int | None) -> list[AssignSite]:
        """``name[key] = value`` assignments of ``scope`` that run before ``order`` (None:
        all of them): what a dict or list built item by item holds."""
        if self._stored is None:
            self._stored = {}
            for assign in self.item_assigns:
                self._stored.setdefault((assign.targets[0], id(assign.scope)), []).append(assign)
        found = self._stored.get((name, id(scope)), [])
        return [a for a in found if order is None or a.order < order]

    def bound_calls(self, name: str, scope: Scope) -> list[CallSite]:
        """The calls whose results are assigned to ``name`` as seen from ``scope``
        (``tape`` in ``tape = tf.GradientTape()``)."""
        return [site for site in map(self.site, self.values_of(name, scope)) if site is not None]

    # ---- name resolution -------------------------------------------------------------------
    def resolve(self, name: str | None, scope: Scope | None = None) -> str | None:
        """Resolve a dotted name through the module's imports (None if not imported)."""
        if name is None:
            return None
        head, _, rest = name.partition(".")
        scope = scope or self.module_scope
        while scope is not None and scope.node is not None:
            if scope.is_local(head):
                base = self._returned_module(head, scope)
                break
            scope = scope.parent
        else:
            if head in self.imports:
                base = self.imports[head]
            elif head in self.module_scope.assigned:
                base = self._returned_module(head, self.module_scope)
            elif len(self.star_imports) == 1:
                base = f"{self.star_imports[0]}.{head}"
            else:
                base = None
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def with_borrowed(self, borrowed: dict[str, Any]) -> FileIndex:
        """This index reading other modules' constants (a shallow copy: nothing of the walk
        depends on them)."""
        index = copy.copy(self)
        index.borrowed = borrowed
        return index

    def constant_of(self, name: str | None, scope: Scope) -> tuple[Any] | None:
        """``(value,)`` when the dotted name reads a constant of another module of the project
        (``C.DTYPE_FP16``, see :attr:`borrowed`); None otherwise."""
        if not self.borrowed or name is None:
            return None
        resolved = self.resolve(name, scope)
        return (self.borrowed[resolved],) if resolved in self.borrowed else None

    def _returned_module(self, name: str, scope: Scope) -> str | None:
        """The module a name holds when every assignment to it calls a function returning that
        module (``nlp = try_import_gluonnlp()``)."""
        if not self.modules or name in scope.params or name in scope.rebound:
            return None
        found = set()
        for value in scope.assigned.get(name, []):
            function = dotted(value.func) if isinstance(value, cst.Call) else None
            if function is None or function.split(".")[0] == name:
                return None
            found.add(self.modules.get(self.resolve(function, scope) or function))
        return found.pop() if len(found) == 1 else None

    # ---- imports ---------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.imports[alias.asname.name.value] = name
            else:
                head = name.split(".")[0]
                self.imports[head] = head
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        module = dotted(node.module) if node.module is not None else ""
        if module is None:
            return False
        prefix = "." * len(node.relative) + module
        if isinstance(node.names, cst.ImportStar):
            self.star_imports.append(prefix)
            return False
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.imports[local] = (
                f"{prefix}.{name}" if prefix and prefix[-1] != "." else prefix + name
            )
        return False

    # ---- scopes ----------------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        bases = tuple(name for name in (dotted(a.value) for a in node.bases) if name is not None)
        info = ClassInfo(node, bases)
        self.classes.setdefault(node.name.value, info)
        self._classes.append(info)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        owner = self._classes[-1] if self._classes else None
        self._scope.rebound.add(node.name.value)
        scope = Scope(node, self._scope)
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            scope.params[param.name.value] = param.default
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                scope.params[star.name.value] = None
        positional = [p.name.value for p in (*params.posonly_params, *params.params)]
        if owner is None:
            scope.callee, scope.positional = node.name.value, tuple(positional)
            self.functions.setdefault(node.name.value, scope)
        else:
            scope.owner = owner.node.name.value
            owner.methods.setdefault(node.name.value, scope)
            if node.name.value == "__init__":
                scope.callee, scope.positional = owner.node.name.value, tuple(positional[1:])
        self._classes.append(None)  # functions nested in a method are not methods
        self._scope = scope

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._classes.pop()
        self._scope = self._scope.parent or self.module_scope

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            self._scope.returns.append(node.value)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        scope = Scope(node, self._scope)
        for param in node.params.params:
            scope.params[param.name.value] = param.default
        self._scope = scope

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._scope = self._scope.parent or self.module_scope

    # ---- blocks ----------------------------------------------------------------------------
    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            if item.asname is not None:
                self._bind(item.asname.name, item.item)

    def visit_With_body(self, node: cst.With) -> None:
        self.leave_Assign(node)  # ``as`` names are bound once the items ran
        self._stack.append((WITH, node))

    def leave_With_body(self, node: cst.With) -> None:
        self._stack.pop()

    def visit_If(self, node: cst.If) -> None:
        self.tests[id(node)] = (self._scope, self._order)

    def visit_If_body(self, node: cst.If) -> None:
        self._stack.append((IF_BODY, node))

    def leave_If_body(self, node: cst.If) -> None:
        self._stack.pop()

    def visit_If_orelse(self, node: cst.If) -> None:
        self._stack.append((IF_ELSE, node))

    def leave_If_orelse(self, node: cst.If) -> None:
        self._stack.pop()

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self.tests[id(node)] = (self._scope, self._order)

    def visit_IfExp_body(self, node: cst.IfExp) -> None:
        self._stack.append((CHOSEN_BODY, node))

    def leave_IfExp_body(self, node: cst.IfExp) -> None:
        self._stack.pop()

    def visit_IfExp_orelse(self, node: cst.IfExp) -> None:
        self._stack.append((CHOSEN_ELSE, node))

    def leave_IfExp_orelse(self, node: cst.IfExp) -> None:
        self._stack.pop()

    def visit_ExceptHandler_body(self, node: cst.ExceptHandler) -> None:
        self._stack.append((HANDLER, node))

    def leave_ExceptHandler_body(self, node: cst.ExceptHandler) -> None:
        self._stack.pop()

    def visit_Decorator(self, node: cst.Decorator) -> None:
        function = self._scope.node  # decorators are walked after the function's scope opens
        if isinstance(function, cst.FunctionDef):
            self.decorators.setdefault(id(function), []).append(node.decorator)

    # ---- assignments -----------------------------------------------------------------------
    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind(target.target, node.value)
            if isinstance(target.target, cst.Subscript):
                self._item(target.target, node.value)

    def leave_Assign(self, original_node: cst.CSTNode) -> None:
        """An assignment takes effect after its value ran: uses in the value (``model =
        accelerator.prepare(model)``) see the earlier binding."""
        for site in self._pending:
            site.order = self._order
        self._pending.clear()
        self._order += 1

    leave_AnnAssign = leave_Assign

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._rebind(node.target)

    def visit_Del(self, node: cst.Del) -> None:
        self._rebind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._rebind(node.target)
        if isinstance(node.target, cst.Name):
            self._scope.loops.setdefault(node.target.value, node.iter)

    def visit_For_body(self, node: cst.For) -> None:
        self._stack.append((LOOP, node))

    def leave_For_body(self, node: cst.For) -> None:
        self._stack.pop()

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._rebind(node.target)

    def _enter_comprehension(self, node: cst.CSTNode) -> None:
        self._stack.append((COMP, node))

    def _leave_comprehension(self, node: cst.CSTNode) -> None:
        self._stack.pop()

    visit_ListComp = visit_GeneratorExp = visit_SetComp = visit_DictComp = _enter_comprehension
    leave_ListComp = leave_GeneratorExp = leave_SetComp = leave_DictComp = _leave_comprehension

    def visit_Global(self, node: cst.Global) -> None:
        for item in node.names:
            self.module_scope.rebound.add(item.name.value)

    def _rebind(self, target: cst.CSTNode) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._rebind(element.value)
        elif isinstance(target, cst.Subscript):
            name = dotted(target.value)
            if name is not None:
                self.item_assigned.add(name)
        else:
            name = dotted(target)
            if name is not None:
                self._scope.rebound.add(name)

    def _bind(
        self, target: cst.CSTNode, value: cst.BaseExpression, element: int | None = None
    ) -> None:
        if isinstance(target, (cst.Tuple, cst.List)) and self._unpack(target, value):
            return
        if isinstance(target, (cst.Tuple, cst.List, cst.Subscript)):
            self._rebind(target)
            return
        name = dotted(target)
        if name is None:
            return
        if self._scope is self.module_scope:
            self._module_alias(name, value)
        owner = self._classes[-1] if self._classes else None
        if owner is not None and "." not in name:  # in a class body: a class attribute
            owner.attributes.setdefault(name, value)
        self._scope.assigned.setdefault(name, []).append(value)
        stack = tuple(self._stack)
        site = AssignSite((name,), value, self._scope, self._order, stack, element=element)
        self.assigns.append(site)
        self._pending.append(site)
        self._order += 1

    def _module_alias(self, name: str, value: cst.BaseExpression) -> None:
        """``layers = tf_keras.layers`` at module level: ``layers.Dense`` resolves as if
        imported (a lower-case attribute of an import, a submodule or function, assigned once;
        not a dtype such as ``tf.float16``)."""
        if name in self.module_scope.assigned:
            if name in self._aliases:
                del self.imports[name]
                self._aliases.discard(name)
            return
        written = dotted(value) if isinstance(value, cst.Attribute) else None
        last = (written or "").rpartition(".")[2]
        if written is None or not last.islower() or _DTYPE.match(last) or name in self.imports:
            return
        resolved = self.resolve(written, self.module_scope)
        if resolved is not None:
            self.imports[name] = resolved
            self._aliases.add(name)

    def _unpack(self, target: cst.Tuple | cst.List, value: cst.BaseExpression) -> bool:
        """``a, b = x, y`` binds each name to its element; ``out, aux = net(x)`` binds each
        name to the call, with its position in the tuple the call returns (a factory's
        ``model, transform = build()``); names may be attributes (``state, self.y =
        self.predictor(x)``)."""
        elements = target.elements
        if not all(
            isinstance(e, cst.Element)
            and isinstance(e.value, (cst.Name, cst.Attribute))
            and dotted(e.value) is not None
            for e in elements
        ):
            return False
        if isinstance(value, (cst.Tuple, cst.List)):
            values = [e.value for e in value.elements]
            if len(values) != len(elements) or any(
                not isinstance(e, cst.Element) for e in value.elements
            ):
                return False
        elif isinstance(value, cst.Call):
            for position, element in enumerate(elements):
                self._bind(element.value, value, position)
            return True
        else:
            return False
        for element, part in zip(elements, values):
            self._bind(element.value, part)
        return True

    def _item(self, target: cst.Subscript, value: cst.BaseExpression) -> None:
        """``name[key] = value`` with one plain key."""
        name = dotted(target.value)
        if (
            name is None
            or len(target.slice) != 1
            or not isinstance(target.slice[0].slice, cst.Index)
        ):
            return
        key = target.slice[0].slice.value
        stack = tuple(self._stack)
        site = AssignSite((name,), value, self._scope, self._order, stack, key)
        self.item_assigns.append(site)
        self._pending.append(site)
        self._order += 1

    # ---- calls -----------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        name = dotted(node.func)
        site = CallSite(
            node,
            name,
            self.resolve(name, self._scope) or self._alias(name),
            self._scope,
            tuple(self._stack),
            self._order,
            self._statement,
        )
        self._order += 1
        self.calls.append(site)
        self.by_node[id(node)] = site
        self._stack.append((CALL, node))

    def leave_Call(self, original_node: cst.Call) -> None:
        self._stack.pop()

    def _alias(self, name: str | None) -> str | None:
        """What a local name bound once to an imported class calls: ``RNN = torch.nn.LSTM if
        "lstm" in typ else torch.nn.GRU`` then ``RNN(idim, units)`` builds the first arm's
        class (the arms must be classes of one module, which take the same arguments)."""
        if name is None or "." in name or name in self._scope.rebound:
            return None
        values = self._scope.assigned.get(name, [])
        if len(values) != 1 or name in self._scope.params:
            return None
        value = values[0]
        arms = [value.body, value.orelse] if isinstance(value, cst.IfExp) else [value]
        resolved = [self.resolve(dotted(arm), self._scope) for arm in arms]
        if any(r is None or "." not in r for r in resolved):
            return None
        if len({r.rpartition(".")[0] for r in resolved}) != 1:  # type: ignore[union-attr]
            return None
        return resolved[0]

    # ---- argparse --------------------------------------------------------------------------
    def _collect_argparse(self) -> None:
        """``args.<dest>`` defaults from ``add_argument('--dest', default=...)`` calls."""
        for site in self.calls:
            if site.method != "add_argument" or not site.node.args:
                continue
            flag, dest = argparse_names(site.node)
            if dest is not None:
                self.arguments.setdefault(dest, (site, flag or dest))
            default = site.arg(None, "default")
            if dest is not None and default is not None:
                self.argparse[dest] = (default, flag or dest)


def call_argument(
    node: cst.Call, index: int | None, keyword: str | None
) -> cst.BaseExpression | None:
    """The argument of ``node`` at positional ``index`` or named ``keyword``, if given."""
    position = 0
    for argument in node.args:
        if argument.keyword is not None:
            if keyword is not None and argument.keyword.value == keyword:
                return argument.value
        elif argument.star:
            index = None  # positions after *args are unknown
        else:
            if index is not None and position == index:
                return argument.value
            position += 1
    return None


def argparse_names(node: cst.Call) -> tuple[str | None, str | None]:
    """(flag, dest) of an ``add_argument`` call: its first long flag (else its positional
    name), and the attribute argparse stores the value in."""
    flags = [string_value(a.value) for a in node.args if a.keyword is None]
    longs = [f for f in flags if f and f.startswith("--")]
    positional = [f for f in flags if f and not f.startswith("-")]
    flag = (longs or positional or [None])[0]
    dest = string_value(call_argument(node, None, "dest"))
    if dest is None and flag is not None:
        dest = flag.lstrip("-").replace("-", "_")
    return flag, dest
