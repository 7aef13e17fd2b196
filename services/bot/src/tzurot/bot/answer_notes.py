"""The small lines the bot shows under an answer, no part of it (history keeps the gateway's
content, never these): that the model's length limit cut it off, and the gateway's footer (the
answering model when the user's model_footer setting is on, and any file left unread for want of
a key: "image not read: add a key for openrouter with /wallet set openrouter"), one line."""

from __future__ import annotations

CUT_OFF_LINE = "-# (cut off: the model reached its length limit)"
"""Under an answer the provider ended at max_tokens (finish_reason "length")."""
_NOTE = "-# "
_FENCE = "```"
_FENCE_CLOSE = "\n```"


def with_notes(content: str, *, finish_reason: str, footer: str) -> str:
    """The answer as posted: its text, then (each on its own small line) that it was cut off
    at the length limit, and the answering model. A code block the text leaves open (an
    answer cut mid-block) is closed first, or the lines would show as code."""
    notes = [CUT_OFF_LINE] if finish_reason == "length" else []
    if footer:
        notes.append(f"-# {footer}")
    if not notes:
        return content
    if content.count(_FENCE) % 2:
        content += _FENCE_CLOSE
    return "\n".join([content, *notes])


def as_shown(content: str, last_line: str) -> list[str]:
    """Every way `with_notes` may have shown `content`, given the last line its last message
    shows: bare, with the cut-off line, with a footer (that last line's, when it reads as
    one), or both. A status line (a restart's, a skill's: they end in "…") is no footer: a
    footer names the model ("provider/model") or a file left unread, never ending so."""
    footers = [""]
    if (
        last_line.startswith(_NOTE)
        and last_line != CUT_OFF_LINE
        and len(last_line) > len(_NOTE)
        and not last_line.endswith("…")
    ):
        footers.append(last_line[len(_NOTE) :])
    return [
        with_notes(content, finish_reason=reason, footer=footer)
        for reason in ("stop", "length")
        for footer in footers
    ]
