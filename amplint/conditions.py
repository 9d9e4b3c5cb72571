"""Conditions over a script's configurations: under which settings a piece of code runs.

A configuration gives every option of the script a value (argparse and click options, attributes
of a configuration object, module globals a configurator overrides) and every test amplint cannot
fold (``torch.cuda.is_available()``) an outcome. A :class:`Condition` is a set of configurations,
written as a disjunction of conjunctions ("--amp with --amp-dtype float16, or --fp16"); each
conjunction limits some options to a set of values, or to any value but a set (an open option
such as a ``--dtype`` string can take any value). Conditions stay small: real scripts test a
handful of options, and a condition that grows past :data:`MAX_TERMS` conjunctions is widened
to "every configuration" of the options it mentions no longer (never narrowed: code is not
assumed unreachable for want of room).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

Constant = Union[int, float, str, bool, None]

BOOL, TEXT, NUMBER, ANY = "bool", "text", "number", "any"
MAX_TERMS = 24
_FALSY: frozenset[Constant] = frozenset({False, None, ""})


@dataclass(frozen=True, order=True)
class Option:
    """One thing a configuration chooses: an option, a configuration attribute, a global a
    configurator sets, or an outcome of a test amplint cannot fold (``test=True``).

    ``flag`` is how users set it (``--amp``); ``sets`` is the value a flag without an argument
    stores (True for ``store_true``, False for ``store_false``), None for options taking a value.
    ``choices`` bounds the values (booleans: True and False); None means any value of its kind.
    A ``free`` option is a value this module cannot determine (a parameter nobody here passes):
    tests of it split configurations consistently, but a switch never reads it.
    """

    key: str
    shown: str = field(compare=False)
    kind: str = field(default=ANY, compare=False)
    default: Constant = field(default=None, compare=False)
    choices: tuple[Constant, ...] | None = field(default=None, compare=False)
    sets: bool | None = field(default=None, compare=False)
    test: bool = field(default=False, compare=False)
    free: bool = field(default=False, compare=False)

    @property
    def domain(self) -> frozenset[Constant] | None:
        """Every value it can take, when that is a finite set."""
        if self.kind == BOOL:
            return frozenset({True, False})
        if self.choices is not None:
            return frozenset(self.choices) | {self.default}
        return None


@dataclass(frozen=True)
class Limit:
    """One option limited to ``values`` (``inside``) or to anything but them."""

    option: Option
    inside: bool
    values: frozenset[Constant]

    @property
    def _order(self) -> tuple:
        return (self.option.key, self.inside, sorted(map(repr, self.values)))

    def __and__(self, other: Limit) -> Limit:
        a, b = self, other
        if a.inside and b.inside:
            return _limit(a.option, True, a.values & b.values)
        if a.inside or b.inside:
            positive, negative = (a, b) if a.inside else (b, a)
            return _limit(a.option, True, positive.values - negative.values)
        return _limit(a.option, False, a.values | b.values)

    def covers(self, other: Limit) -> bool:
        """Every value ``other`` allows is allowed here."""
        if other.inside:
            return other.values <= self.values if self.inside else not other.values & self.values
        return not self.inside and self.values <= other.values

    def union(self, other: Limit) -> Limit:
        if self.inside and other.inside:
            return _limit(self.option, True, self.values | other.values)
        if not self.inside and not other.inside:
            return _limit(self.option, False, self.values & other.values)
        positive, negative = (self, other) if self.inside else (other, self)
        return _limit(self.option, False, negative.values - positive.values)

    def negated(self) -> Limit:
        return _limit(self.option, not self.inside, self.values)

    @property
    def empty(self) -> bool:
        return self.inside and not self.values

    @property
    def full(self) -> bool:
        if not self.inside:
            return not self.values
        domain = self.option.domain
        return domain is not None and self.values >= domain

    def allows(self, value: Constant) -> bool:
        return (value in self.values) == self.inside

    def describe(self) -> str:
        """``--amp``, ``without --amp``, ``--dtype float16``, ``cfg.fp16``..."""
        option = self.option
        flag = option.shown.startswith("-")
        if option.test:
            value = self.values == {True} if self.inside else self.values == {False}
            return f"`{option.shown}`" if value else f"not `{option.shown}`"
        if option.kind == BOOL and len(self.values) == 1:
            value = next(iter(self.values)) is True
            if option.sets is not None:
                return option.shown if value == option.sets else f"without {option.shown}"
            if flag:
                return f"{option.shown} {value}"
            return option.shown if value else f"not {option.shown}"
        if (
            self.values
            and self.values <= _FALSY
            and option.kind == NUMBER
            and self.values != {None}
        ):
            return f"{option.shown} {'0' if self.inside else 'not 0'}"
        if self.values and self.values <= _FALSY:  # a truth test of a value
            if not self.inside:
                return f"{option.shown} given" if flag else option.shown
            return f"without {option.shown}" if flag else f"not {option.shown}"
        values = "|".join(_shown(v) for v in sorted(self.values, key=repr))
        if flag:
            return f"{option.shown} {values}" if self.inside else f"{option.shown} not {values}"
        return f"{option.shown}={values}" if self.inside else f"{option.shown}!={values}"


def _shown(value: Constant) -> str:
    return value if isinstance(value, str) else repr(value)


def _limit(option: Option, inside: bool, values: frozenset[Constant]) -> Limit:
    """A limit with finite domains written as the values allowed."""
    domain = option.domain
    if domain is not None and not inside:
        return Limit(option, True, domain - values)
    if domain is not None:
        return Limit(option, True, values & domain)
    return Limit(option, inside, frozenset(values))


Term = tuple[Limit, ...]  # a conjunction, one limit per option, sorted by option key


def _conjoin(a: Term, b: Term) -> Term | None:
    """Both terms at once; None when no configuration satisfies both."""
    merged = {limit.option: limit for limit in a}
    for limit in b:
        known = merged.get(limit.option)
        merged[limit.option] = limit if known is None else known & limit
    if any(limit.empty for limit in merged.values()):
        return None
    return tuple(sorted((lim for lim in merged.values() if not lim.full), key=_key))


def _key(limit: Limit) -> str:
    return limit.option.key


def _covers(a: Term, b: Term) -> bool:
    """Every configuration of ``b`` is one of ``a``."""
    mine = {limit.option: limit for limit in b}
    return all(limit.option in mine and limit.covers(mine[limit.option]) for limit in a)


def _merge(a: Term, b: Term) -> Term | None:
    """``a or b`` as one term, when they differ in one option only."""
    if len(a) != len(b):
        return None
    different = [(x, y) for x, y in zip(a, b) if x != y or x.values != y.values]
    if len(different) != 1 or different[0][0].option != different[0][1].option:
        return None
    x, y = different[0]
    joined = x.union(y)
    return tuple(sorted((lim for lim in (*a, joined) if lim is not x and not lim.full), key=_key))


def _reduce(a: Term, b: Term) -> tuple[Term, Term] | None:
    """``(P and o in S) or (Q and o not in S)`` with Q weaker than P: ``o`` drops out of the
    first term (``--dtype float16 without --half, or --half`` is ``--dtype float16, or
    --half``). Returns (the term, it reduced)."""
    mine = {limit.option: limit for limit in b}
    for limit in a:
        other = mine.get(limit.option)
        if other is None or not limit.union(other).full:
            continue
        rest_a = tuple(lim for lim in a if lim is not limit)
        rest_b = tuple(lim for lim in b if lim is not other)
        if _covers(rest_b, rest_a):
            return a, rest_a
    return None


@dataclass(frozen=True)
class Condition:
    """A set of configurations: a disjunction of terms (conjunctions of limits)."""

    terms: frozenset[Term]

    @staticmethod
    def of(terms: Iterable[Term]) -> Condition:
        """The simplest equivalent condition: subsumed terms dropped, neighbours merged."""
        pending = list(dict.fromkeys(terms))
        changed = True
        while changed:
            changed = False
            pending.sort(key=len)
            kept: list[Term] = []
            for term in pending:
                if any(_covers(other, term) for other in kept):
                    changed = changed or bool(kept)
                    continue
                kept = [other for other in kept if not _covers(term, other)]
                kept.append(term)
            for i, a in enumerate(kept):
                for b in kept[i + 1 :]:
                    joined = _merge(a, b)
                    if joined is not None:
                        kept = [t for t in kept if t is not a and t is not b] + [joined]
                        changed = True
                        break
                    reduced = _reduce(a, b) or _reduce(b, a)
                    if reduced is not None:
                        old, new = reduced
                        kept = [new if t is old else t for t in kept]
                        changed = True
                        break
                if changed:
                    break
            pending = kept
        if len(pending) > MAX_TERMS:
            return _widen(pending)
        return Condition(frozenset(pending))

    def __and__(self, other: Condition) -> Condition:
        if self is ALWAYS:
            return other
        if other is ALWAYS:
            return self
        terms = []
        for a in self.terms:
            for b in other.terms:
                both = _conjoin(a, b)
                if both is not None:
                    terms.append(both)
        return Condition.of(terms)

    def __or__(self, other: Condition) -> Condition:
        return Condition.of([*self.terms, *other.terms])

    def __invert__(self) -> Condition:
        result = ALWAYS
        for term in sorted(self.terms, key=_term_order):
            result = result & Condition.of([(limit.negated(),) for limit in term])
            if not result.terms:
                break
        return result

    @property
    def possible(self) -> bool:
        """Some configuration satisfies it."""
        return bool(self.terms)

    @property
    def always(self) -> bool:
        """Every configuration satisfies it."""
        return () in self.terms

    @property
    def options(self) -> frozenset[Option]:
        return frozenset(limit.option for term in self.terms for limit in term)

    def holds_by_default(self) -> bool:
        """Whether the configuration of every option's default (tests either way) is in it."""
        return any(
            all(limit.option.test or limit.allows(limit.option.default) for limit in term)
            for term in self.terms
        )

    def settings(self) -> Condition:
        """The condition on what users set only: tests amplint cannot fold and values it cannot
        determine left out (any outcome of them will do)."""
        return Condition.of(
            tuple(limit for limit in term if not (limit.option.test or limit.option.free))
            for term in self.terms
        )

    def describe(self) -> tuple[str, ...]:
        """One text per term (``--amp --amp-dtype float16``); empty for every configuration."""
        if self.always:
            return ()
        return tuple(sorted(" ".join(limit.describe() for limit in term) for term in self.terms))

    def __iter__(self) -> Iterator[Term]:
        return iter(sorted(self.terms, key=_term_order))


def _term_order(term: Term) -> tuple:
    return tuple(limit._order for limit in term)


def _widen(terms: list[Term]) -> Condition:
    """Fewer terms covering at least the same configurations: limits of the least shared
    options are dropped (widened) until the terms fit."""
    counts: dict[Option, int] = {}
    for term in terms:
        for limit in term:
            counts[limit.option] = counts.get(limit.option, 0) + 1
    for option in sorted(counts, key=lambda o: (counts[o], o.key)):
        terms = [tuple(lim for lim in term if lim.option != option) for term in terms]
        condition = Condition.of(terms)
        if len(condition.terms) <= MAX_TERMS:
            return condition
        terms = list(condition.terms)
    return ALWAYS


ALWAYS = Condition(frozenset({()}))
NEVER = Condition(frozenset())


def within(cases: Iterable[tuple[Condition, Any]], condition: Condition) -> list:
    """``(condition & c, value)`` for each case ``(c, value)`` that can still hold under
    ``condition``: cases of a value narrowed to where it is read."""
    if condition.always:
        return list(cases)
    found = []
    for case_condition, value in cases:
        both = case_condition & condition
        if both.possible:
            found.append((both, value))
    return found


def limit(option: Option, values: Iterable[Constant], inside: bool = True) -> Condition:
    """The configurations where ``option`` is one of ``values`` (``inside``) or none of them."""
    single = _limit(option, inside, frozenset(values))
    if single.empty:
        return NEVER
    if single.full:
        return ALWAYS
    return Condition(frozenset({(single,)}))


def truthy(option: Option, value: bool = True) -> Condition:
    """The configurations where ``option`` is true (``value``) or false in an ``if``."""
    if option.kind == BOOL:
        return limit(option, {value})
    falsy = _FALSY if option.kind == ANY else _FALSY & _kind_values(option.kind)
    return limit(option, falsy, inside=not value)


def _kind_values(kind: str) -> frozenset[Constant]:
    return frozenset({None, ""}) if kind == TEXT else frozenset({None, 0})
