"""The small lines the bot shows under an answer, no part of it (history keeps the gateway's
content, never these): that the model's length limit cut it off, and the model footer."""

from __future__ import annotations

CUT_OFF_LINE = "-# (cut off: the model reached its length limit)"
"""Under an answer the provider ended at max_tokens (finish_reason "length")."""
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
