"""Text from the mesh made safe to print: tzurot.admin.terminal_text, where `tzurot admin`
uses it too (tzurot-admin cannot import the CLI; the CLI depends on tzurot-admin)."""

from __future__ import annotations

from tzurot.admin.terminal_text import MAX_HELD_CHARS, StreamFilter, one_line, printable

__all__ = ["MAX_HELD_CHARS", "StreamFilter", "one_line", "printable"]
