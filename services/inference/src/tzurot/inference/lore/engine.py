"""Which lorebook entries fire for one message: SillyTavern's World Info rules.

One pass (`activate`):

1. Timed effects of the conversation are checked against its length (messages so far,
   the new one included): a sticky or cooldown window whose start the chat has not passed
   is dropped (a retried message), one that reached its end ends — a sticky that ends puts
   its entry on cooldown from now — and `delay` holds an entry back while the chat is
   shorter than it.
2. Entries are scanned by descending insertion order. Disabled, delayed, cooling-down
   (unless sticky) entries are skipped; `@@activate`, `constant` and active sticky entries
   fire; otherwise a primary key must occur in the last `scan_depth` messages (the entry's,
   else its book's, else 2), then the secondary keys by the selective logic: AND_ANY (one of
   them), AND_ALL (all), NOT_ANY (none), NOT_ALL (not all).
3. Of the entries of one inclusion group that fired in this step, one is kept (`groups`).
   Fired entries roll their probability (sticky ones do not), then take the token budget in
   order of priority (`priority`, else insertion order; sticky first): what does not fit is
   dropped, lowest priority first, and stops recursion.
4. With recursion on in its book, an entry's text is scanned again for other entries (not
   those with `exclude_recursion`, not from entries with `prevent_recursion`; entries with
   `delay_until_recursion` N only from recursion level N on), at most
   `max_recursion_steps` times.
5. New sticky and cooldown windows start for the entries that made it into the prompt.

Regex keys of the whole pass share one `RegexBudget` (`matching`): once it is spent they
match nothing (text keys still do) and the budget says so (`spent`, `spent_on`). The pass is
pure CPU on immutable input: callers run it in a worker thread.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from tzurot.inference.lore.groups import apply_groups
from tzurot.inference.lore.matching import Decorators, RegexBudget, decorators, matches
from tzurot.inference.lore.model import (
    DEFAULT_MAX_RECURSION_STEPS,
    DEFAULT_SCAN_DEPTH,
    MATCHED_FOREVER,
    MAX_SCAN_DEPTH,
    Activation,
    Book,
    EffectKind,
    Entry,
    LoreState,
    Outcome,
    TimedEffect,
)

_JOINER = "\n\x01"


@dataclass(frozen=True)
class Scan:
    """What is scanned: the conversation's messages, newest first (the new one at 0)."""

    messages: Sequence[str]
    chat_length: int
    """Messages in the conversation, the new one included (timed effects count these)."""
    assistant_messages: int = 0


@dataclass
class _Candidate:
    book: Book
    entry: Entry
    deco: Decorators
    index: int


@dataclass
class _Timed:
    sticky: set[tuple[str, str]] = field(default_factory=set)
    cooldown: set[tuple[str, str]] = field(default_factory=set)
    matched: set[tuple[str, str]] = field(default_factory=set)
    greeting: int | None = None
    """The greeting the conversation began with (None: unknown, @@is_greeting is ignored)."""
    kept: list[TimedEffect] = field(default_factory=list)


@dataclass(frozen=True)
class _Keys:
    """How one activation matches keys: macros expanded, regex keys within one budget."""

    substitute: Callable[[str], str]
    budget: RegexBudget

    def found(self, text: str, key: str, entry: Entry) -> bool:
        expanded = self.substitute(key).strip()
        return bool(expanded) and matches(
            text,
            expanded,
            entry,
            case_sensitive=bool(entry.case_sensitive),
            whole_words=bool(entry.match_whole_words),
            budget=self.budget,
        )

    def note(self, c: _Candidate) -> None:
        """Remembers the entry whose keys ran the budget out (logged, by ids only)."""
        if self.budget.spent and self.budget.spent_on is None:
            self.budget.spent_on = (c.book.id, c.entry.uid)


def _key(book_id: str, uid: str) -> tuple[str, str]:
    return (book_id, uid)


def _check_timed(state: LoreState, entries: dict[tuple[str, str], Entry], length: int) -> _Timed:
    timed = _Timed()
    ended_sticky: list[tuple[str, str]] = []
    for effect in state.effects:
        key = _key(effect.book_id, effect.uid)
        entry = entries.get(key)
        if length <= effect.start and not effect.protected:
            continue  # the chat did not advance (a retried message): the window is void
        if effect.kind == "greeting":
            timed.kept.append(effect)
            timed.greeting = effect.start
            continue
        if effect.kind == "matched":
            timed.kept.append(effect)
            timed.matched.add(key)
            continue
        if entry is None:
            if length < effect.end:
                timed.kept.append(effect)  # from a book not in play now: keep it running
            continue
        if not getattr(entry, effect.kind):
            continue
        if length >= effect.end:
            if effect.kind == "sticky":
                ended_sticky.append(key)
            continue
        timed.kept.append(effect)
        (timed.sticky if effect.kind == "sticky" else timed.cooldown).add(key)
    for key in ended_sticky:
        entry = entries[key]
        if entry.cooldown:
            timed.kept = [
                e
                for e in timed.kept
                if not (e.kind == "cooldown" and _key(e.book_id, e.uid) == key)
            ]
            timed.kept.append(
                TimedEffect(key[0], key[1], "cooldown", length, length + entry.cooldown, True)
            )
            timed.cooldown.add(key)
    return timed


def _scan_text(messages: Sequence[str], depth: int, recurse: Sequence[str]) -> str:
    depth = max(0, min(depth, MAX_SCAN_DEPTH))
    parts = list(messages[:depth]) + list(recurse)
    return "\x01" + _JOINER.join(parts) if parts else ""


def _key_hit(text: str, keys: Sequence[str], entry: Entry, match: _Keys) -> str:
    for key in keys:
        if match.found(text, key, entry):
            return key
    return ""


def _secondary(text: str, entry: Entry, match: _Keys) -> tuple[bool, str]:
    found = [match.found(text, k, entry) for k in entry.secondary_keys]
    logic = entry.logic
    if logic == "AND_ANY":
        return any(found), "and any secondary key"
    if logic == "AND_ALL":
        return all(found), "and all secondary keys"
    if logic == "NOT_ANY":
        return not any(found), "and no secondary key"
    return not all(found), "and not all secondary keys"


def _depth(c: _Candidate) -> int:
    depth = c.deco.scan_depth
    if depth is None:
        depth = c.entry.scan_depth if c.entry.scan_depth is not None else c.book.scan_depth
    return DEFAULT_SCAN_DEPTH if depth is None else depth


def _score(
    c: _Candidate,
    scan: Scan,
    recurse: Sequence[str],
    recursion: bool,
    match: _Keys,
) -> int:
    """Keys found (inclusion-group scoring): primary ones, plus the secondary ones under
    AND_ANY, or under AND_ALL when every one is found."""
    entry = c.entry
    text = _scan_text(scan.messages, _depth(c), recurse if recursion else ())

    def hits(keys: Sequence[str]) -> int:
        return sum(1 for k in keys if match.found(text, k, entry))

    primary = hits(entry.keys)
    if not entry.keys or not entry.secondary_keys:
        return primary
    secondary = hits(entry.secondary_keys)
    if entry.logic == "AND_ANY" or (
        entry.logic == "AND_ALL" and secondary == len(entry.secondary_keys)
    ):
        return primary + secondary
    return primary


def _pair_score(
    scan: Scan,
    recurse: Sequence[str],
    recursion: bool,
    match: _Keys,
    pair: tuple[_Candidate, str],
) -> int:
    score = _score(pair[0], scan, recurse, recursion, match)
    match.note(pair[0])
    return score


def _why_matched(  # noqa: PLR0911  # one answer per rule
    c: _Candidate,
    scan: Scan,
    recurse: Sequence[str],
    recursion: bool,
    match: _Keys,
) -> str:
    """The reason the entry fires on its keys, or '' when it does not."""
    entry, deco = c.entry, c.deco
    if not entry.keys:
        return ""
    depth = _depth(c)
    text = _scan_text(scan.messages, depth, recurse if recursion else ())
    if not text:
        return ""
    primary = _key_hit(text, entry.keys, entry, match)
    if not primary:
        return ""
    if deco.additional_keys and not _key_hit(text, deco.additional_keys, entry, match):
        return ""
    if deco.exclude_keys and _key_hit(text, deco.exclude_keys, entry, match):
        return ""
    where = (
        "recursion"
        if recursion and not _key_hit(_scan_text(scan.messages, depth, ()), [primary], entry, match)
        else f"the last {depth} message(s)"
    )
    if not entry.secondary_keys:
        return f"key {primary!r} in {where}"
    ok, rule = _secondary(text, entry, match)
    return f"key {primary!r} in {where}, {rule} ({entry.logic})" if ok else ""


def activate(  # noqa: PLR0912, PLR0915  # the scan loop of the documented steps
    books: Sequence[Book],
    scan: Scan,
    state: LoreState,
    *,
    budget: int,
    count: Callable[[str], int],
    rng: random.Random | None = None,
    substitute: Callable[[str], str] = lambda text: text,
    max_recursion_steps: int = DEFAULT_MAX_RECURSION_STEPS,
    regex_budget: RegexBudget | None = None,
) -> Outcome:
    """The entries that fire for this message, those the budget left out, and the new state.
    Regex keys share `regex_budget` (a fresh `RegexBudget` when None): pass one to learn
    whether it was spent."""
    rng = rng or random.Random()  # noqa: S311  # a dice roll for lore, not cryptography
    match = _Keys(substitute, RegexBudget() if regex_budget is None else regex_budget)
    length = scan.chat_length
    candidates: list[_Candidate] = []
    by_key: dict[tuple[str, str], Entry] = {}
    for book in books:
        for entry in book.entries:
            key = _key(book.id, entry.uid)
            if key in by_key:
                continue
            by_key[key] = entry
            candidates.append(_Candidate(book, entry, decorators(entry.content), len(candidates)))
    candidates.sort(key=lambda c: (-c.entry.order, c.index))
    timed = _check_timed(state, by_key, length)

    fired: list[Activation] = []
    dropped: list[Activation] = []
    done: set[tuple[str, str]] = set()
    failed_roll: set[tuple[str, str]] = set()
    recurse: list[str] = []
    levels = sorted(
        {c.entry.delay_until_recursion for c in candidates if c.entry.delay_until_recursion}
    )
    level = levels.pop(0) if levels else 0
    used = 0
    recursion = False
    steps = 0
    overflow = False
    while True:
        now: list[tuple[_Candidate, str]] = []
        for c in candidates:
            entry, deco = c.entry, c.deco
            key = _key(c.book.id, entry.uid)
            if key in done or key in failed_roll or not entry.enabled:
                continue
            sticky = key in timed.sticky
            if entry.delay and length < entry.delay:
                continue
            if key in timed.cooldown and not sticky:
                continue
            delayed = entry.delay_until_recursion
            if delayed and not sticky and (not recursion or delayed > level):
                continue
            if (
                recursion
                and not sticky
                and (entry.exclude_recursion or not c.book.recursive_scanning)
            ):
                continue
            if deco.activate:
                now.append((c, "@@activate decorator"))
                continue
            if deco.dont_activate:
                continue
            if deco.is_greeting is not None and timed.greeting not in (None, deco.is_greeting):
                continue  # @@is_greeting: only in a conversation begun with that greeting
            matched_before = key in timed.matched
            if deco.dont_activate_after_match and matched_before:
                continue
            if deco.keep_activate_after_match and matched_before:
                now.append((c, "matched before (@@keep_activate_after_match)"))
                continue
            if (
                deco.activate_only_after is not None
                and scan.assistant_messages < deco.activate_only_after
            ):
                continue
            if deco.activate_only_every and scan.assistant_messages % deco.activate_only_every:
                continue
            if entry.constant:
                now.append((c, "constant"))
                continue
            if sticky:
                now.append((c, "sticky (still active)"))
                continue
            why = _why_matched(c, scan, recurse, recursion, match)
            match.note(c)
            if why:
                now.append((c, why))
        now.sort(
            key=lambda pair: (
                _key(pair[0].book.id, pair[0].entry.uid) not in timed.sticky,
                pair[0].deco.ignore_on_max_context,  # left out first when the budget runs out
                -_priority(pair[0].entry),
                pair[0].index,
            )
        )
        in_prompt = {name for a in fired for name in a.entry.group}
        grouped = apply_groups(
            now,
            lambda pair: pair[0].entry,
            sticky=lambda pair: _key(pair[0].book.id, pair[0].entry.uid) in timed.sticky,
            score=functools.partial(_pair_score, scan, recurse, recursion, match),
            activated_groups=in_prompt,
            rng=rng,
        )
        new: list[Activation] = []
        for (c, found), won in grouped:
            why = f"{found}; {won}" if won else found
            entry = c.entry
            key = _key(c.book.id, entry.uid)
            sticky = key in timed.sticky
            if entry.use_probability and entry.probability < 100 and not sticky:
                roll = rng.random() * 100
                if roll > entry.probability:
                    failed_roll.add(key)
                    continue
                why += f"; probability {entry.probability}% passed"
            content = substitute(c.deco.content).strip()
            done.add(key)
            if not content:
                continue
            item = Activation(
                book_id=c.book.id,
                book_name=c.book.name,
                entry=entry,
                content=content,
                reason=why,
                position=c.deco.position
                or ("at_depth" if c.deco.depth is not None else entry.position),
                depth=c.deco.depth if c.deco.depth is not None else entry.depth,
                role=c.deco.role or entry.role,
                priority=_priority(entry),
                tokens=count(content),
            )
            if overflow or used + item.tokens > budget:
                overflow = True
                dropped.append(item)
                continue
            used += item.tokens
            new.append(item)
        fired.extend(new)
        feed = [a.content for a in new if not a.entry.prevent_recursion]
        recursive_books = any(b.recursive_scanning for b in books)
        go_on = recursive_books and not overflow and bool(feed) and steps < max_recursion_steps
        if (
            not go_on
            and levels
            and recursive_books
            and not overflow
            and steps < max_recursion_steps
        ):
            level = levels.pop(0)
            go_on = True
        if not go_on:
            break
        recurse.extend(feed)
        recursion = True
        steps += 1

    effects = list(timed.kept)
    active = {(e.book_id, e.uid, e.kind) for e in effects}
    kinds: tuple[EffectKind, ...] = ("sticky", "cooldown")
    for item in fired:
        if (
            decorators(item.entry.content).remembers_match
            and (
                item.book_id,
                item.entry.uid,
                "matched",
            )
            not in active
        ):
            effects.append(
                TimedEffect(item.book_id, item.entry.uid, "matched", length, MATCHED_FOREVER)
            )
        for kind in kinds:
            span = getattr(item.entry, kind)
            if span and (item.book_id, item.entry.uid, kind) not in active:
                effects.append(
                    TimedEffect(item.book_id, item.entry.uid, kind, length, length + span)
                )
    return Outcome(
        activated=tuple(sorted(fired, key=lambda a: (a.entry.order, a.book_id, a.entry.uid))),
        dropped=tuple(dropped),
        state=replace(state, effects=tuple(effects)),
    )


def _priority(entry: Entry) -> int:
    return entry.priority if entry.priority is not None else entry.order
