"""TerminalPrompt: a Ctrl-C interrupts the prompt whenever it comes, even when the kernel
hands the SIGINT to a thread other than the one reading (where `input()` reads on)."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

import pytest

from tzurot.cli.prompt import TerminalPrompt

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a Linux pseudo-terminal")


class Screen(io.StringIO):
    """What the prompt writes; tells a waiting thread once something is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.shown = threading.Event()

    def flush(self) -> None:
        self.shown.set()


@pytest.fixture
def terminal() -> Iterator[tuple[int, TextIO]]:
    """A pseudo-terminal: the keyboard's end (bytes typed) and the program's end."""
    keyboard, program = os.openpty()
    with open(program, encoding="utf-8", closefd=True) as reading:
        yield keyboard, reading
    os.close(keyboard)


def test_a_line_typed_is_returned(terminal: tuple[int, TextIO]) -> None:
    keyboard, reading = terminal
    screen = Screen()
    os.write(keyboard, "héllo there\n".encode())
    with TerminalPrompt(reading, screen) as prompt:
        assert prompt.read_line("you> ") == "héllo there"
    assert screen.getvalue() == "you> "


def test_ctrl_d_on_an_empty_line_is_the_end(terminal: tuple[int, TextIO]) -> None:
    keyboard, reading = terminal
    os.write(keyboard, b"\x04")
    with TerminalPrompt(reading, Screen()) as prompt, pytest.raises(EOFError):
        prompt.read_line("you> ")


def test_ctrl_c_taken_by_another_thread_interrupts_the_prompt(
    terminal: tuple[int, TextIO],
) -> None:
    keyboard, reading = terminal
    screen = Screen()

    def ctrl_c_on_this_thread() -> None:
        screen.shown.wait(10)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        # If the prompt missed it, type a line after a while so the test ends (and fails).
        if not interrupted.wait(10):
            missed.set()
            os.write(keyboard, b"missed\n")

    interrupted, missed = threading.Event(), threading.Event()
    other = threading.Thread(target=ctrl_c_on_this_thread)
    other.start()
    try:
        with TerminalPrompt(reading, screen) as prompt, pytest.raises(KeyboardInterrupt):
            prompt.read_line("you> ")
        interrupted.set()
    finally:
        interrupted.set()
        other.join()
    assert not missed.is_set(), "the prompt read on until a line was typed"


def test_not_a_terminal_reads_as_input_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("piped line\nnext\n"))
    with TerminalPrompt(sys.stdin, Screen()) as prompt:
        assert prompt.read_line("you> ") == "piped line"
        assert prompt.read_line("you> ") == "next"
