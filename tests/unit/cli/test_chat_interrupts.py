"""`tzurot chat` on a terminal: Ctrl-C during an answer cancels only that answer, every time;
Ctrl-C at the prompt leaves at once, like Ctrl-D. No traceback.

The command runs on a pseudo-terminal, as a user runs it, against the fake gateway of
conftest.py (whose answer to `SLOW` never finishes).
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import sys
import time

import pytest

from tests.unit.cli.conftest import SLOW, Gateway

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a Linux pseudo-terminal")

CTRL_C = b"\x03"
CTRL_D = b"\x04"


class Terminal:
    """`tzurot chat <personality>` on a pseudo-terminal."""

    def __init__(self, env: dict[str, str], personality: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the command
            os.execve(  # noqa: S606 - our own interpreter and module
                sys.executable, [sys.executable, "-m", "tzurot.cli", "chat", personality], env
            )
        self.screen = b""
        self.cursor = 0

    def read_until(self, text: str, within: float = 30.0) -> str:
        """Waits until `text` is on the screen after what earlier calls waited for; moves
        past it. Returns the whole screen."""
        wanted = text.encode()
        deadline = time.monotonic() + within
        while (found := self.screen.find(wanted, self.cursor)) < 0:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on the screen: {self.screen.decode(errors='replace')}"
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                with contextlib.suppress(OSError):  # the command exited
                    self.screen += os.read(self.fd, 4096)
        self.cursor = found + len(wanted)
        return self.screen.decode(errors="replace")

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def exit_code(self, within: float = 15.0) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    self.screen += os.read(self.fd, 4096)
        self.kill()
        raise AssertionError(f"still running: {self.screen.decode(errors='replace')}")

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def test_ctrl_c_at_the_prompt_leaves_at_once(fake_gateway: Gateway) -> None:
    chat = Terminal(fake_gateway.env, "Sage")
    chat.read_until("you> ")
    chat.type(b"hello\n")
    chat.read_until("Sage> echo: hello")
    chat.read_until("you> ")
    chat.type(CTRL_C)
    assert chat.exit_code() == 0, chat.screen.decode(errors="replace")
    assert "Traceback" not in chat.screen.decode()


def test_ctrl_c_during_an_answer_cancels_only_it_every_time(fake_gateway: Gateway) -> None:
    cancelled = fake_gateway.recorded.cancelled
    chat = Terminal(fake_gateway.env, "Sage")
    chat.read_until("you> ")
    for _ in range(2):
        chat.type(SLOW.encode() + b"\n")
        chat.read_until("Sage> let me think")
        chat.type(CTRL_C)
        chat.read_until("(cancelled: this turn was not kept)")
        chat.read_until("you> ")
    chat.type(b"still there?\n")
    chat.read_until("Sage> echo: still there?")
    chat.read_until("you> ")
    chat.type(CTRL_D)
    assert chat.exit_code() == 0, chat.screen.decode(errors="replace")
    assert "Traceback" not in chat.screen.decode()
    deadline = time.monotonic() + 10
    while fake_gateway.recorded.cancelled < cancelled + 2:  # the calls were cancelled, not left
        assert time.monotonic() < deadline, fake_gateway.recorded
        time.sleep(0.05)
