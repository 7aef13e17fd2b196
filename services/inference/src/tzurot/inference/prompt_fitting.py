"""What fits a prompt's budget: lore by priority, memories by relevance, lines in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from tzurot.inference.domain import MemoryItem
from tzurot.inference.lore.model import Activation
from tzurot.inference.prompt_context import MEMORY_HEADER
from tzurot.inference.tokens import TokenCounter

_T = TypeVar("_T")


def fit_lore(
    lore: Sequence[Activation], room: int
) -> tuple[list[Activation], tuple[Activation, ...]]:
    """The lore that fits `room` tokens, the lowest priority left out first; order kept."""
    kept = list(lore)
    dropped: list[Activation] = []
    while kept and sum(item.tokens for item in kept) > room:
        lowest = min(kept, key=lambda item: item.priority)
        kept.remove(lowest)
        dropped.append(lowest)
    return kept, tuple(dropped)


def pick_memories(
    memories: Sequence[MemoryItem], costs: list[int], room: int, counter: TokenCounter
) -> list[MemoryItem]:
    """Most relevant first, each taken when it still fits (the header counts once)."""
    header = counter.count(MEMORY_HEADER)
    if room <= header:
        return []
    picked: list[tuple[int, MemoryItem]] = []
    used = header
    ranked = sorted(enumerate(memories), key=lambda pair: -pair[1].score)
    for index, memory in ranked:
        if used + costs[index] <= room:
            picked.append((index, memory))
            used += costs[index]
    return [memory for _, memory in sorted(picked, key=lambda pair: -pair[1].score)]


def fit_lines(
    items: list[_T], lines: list[str], header: str, room: int, counter: TokenCounter
) -> tuple[str, list[_T]]:
    """The block of the first lines that fit `room` tokens with their header."""
    if not items:
        return "", []
    used = counter.count(header)
    kept_items: list[_T] = []
    kept_lines: list[str] = []
    for item, line in zip(items, lines, strict=True):
        cost = counter.count(line) + 1
        if used + cost > room:
            break
        kept_items.append(item)
        kept_lines.append(line)
        used += cost
    if not kept_lines:
        return "", []
    return header + "\n" + "\n".join(kept_lines), kept_items
