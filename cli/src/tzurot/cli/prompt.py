"""Reading a line at a terminal prompt so that Ctrl-C interrupts it at any moment.

`input()` has a race: a SIGINT that comes after the prompt is written but before its read
blocks (or that the kernel hands to another thread) only sets CPython's flag, and the read
waits on, ignoring the Ctrl-C until the next key. Here the wait is a `select()` that also
watches CPython's signal wakeup pipe, which its C handler writes to whenever a signal comes:
the wait ends, and the handler's KeyboardInterrupt is raised.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from types import TracebackType
from typing import TextIO


class TerminalPrompt:
    """Reads lines from a terminal on the main thread (a context manager: it owns the wakeup
    pipe while it is open)."""

    def __init__(self, terminal: TextIO = sys.stdin, screen: TextIO = sys.stdout) -> None:
        self._terminal = terminal
        self._screen = screen
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    def __enter__(self) -> TerminalPrompt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        os.close(self._wake_read)
        os.close(self._wake_write)

    def read_line(self, prompt: str) -> str:
        """Shows `prompt` and returns the line typed, without its newline. Raises EOFError at
        Ctrl-D on an empty line and KeyboardInterrupt at Ctrl-C, whenever it comes."""
        if not self._terminal.isatty():
            return input(prompt)
        previous = signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)
        try:
            self._screen.write(prompt)
            self._screen.flush()
            return self._wait_for_line()
        finally:
            signal.set_wakeup_fd(previous)

    def _wait_for_line(self) -> str:
        terminal = self._terminal.fileno()
        typed = b""
        while not typed.endswith(b"\n"):
            # A signal (caught by any thread) wakes this; CPython then runs its handler.
            ready, _, _ = select.select([terminal, self._wake_read], [], [])
            if self._wake_read in ready:
                self._drain_wakeups()
            if terminal in ready:
                chunk = os.read(terminal, 4096)  # a terminal gives at most one line a read
                if not chunk:  # Ctrl-D: the end, or the end of a line typed without Enter
                    if not typed:
                        raise EOFError
                    break
                typed += chunk
        encoding = self._terminal.encoding or "utf-8"
        return typed.decode(encoding, errors="replace").removesuffix("\n")

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_read, 512):
                pass
        except BlockingIOError:
            pass
