"""Case-insensitive search that reports positions in the text as written.

Lower-casing or case-folding may lengthen a text ("İ".lower() is "i̇", "ß".casefold() is
"ss"), so a position found in the folded text is not the same position in the original:
`Folded` maps one onto the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Folded:
    """`text` folded, with where each of its characters came from in the original."""

    text: str
    _starts: tuple[int, ...] | None
    """Original index of each folded character, and the original's length last; None when
    every character folded to exactly one."""

    def original(self, index: int) -> int:
        """The original text's index of folded position `index` (0..len(text))."""
        return index if self._starts is None else self._starts[index]

    def aligned(self, index: int) -> bool:
        """Whether folded position `index` falls between two original characters (not
        inside the several characters one of them folded to)."""
        starts = self._starts
        return starts is None or index in (0, len(self.text)) or starts[index] != starts[index - 1]


def fold(text: str, how: Callable[[str], str] = str.casefold) -> Folded:
    """`text` folded by `how` (str.casefold, str.lower), with its positions' map."""
    whole = how(text)
    if len(whole) == len(text):  # no character lengthened (none folds to nothing)
        return Folded(whole, None)
    pieces = [how(character) for character in text]
    starts = [index for index, piece in enumerate(pieces) for _ in piece]
    return Folded("".join(pieces), (*starts, len(text)))
