"""A start gate: spawn a service before its configuration is complete, open the gate later.

Most of a service's start is importing its libraries (SQLAlchemy, gRPC, protobuf, pydantic:
seconds of CPU). A launcher such as `tzurot up` spawns the services first, so they import
while it starts Postgres and migrates, and then opens each one's gate, sending the
environment only known by then (the database URL, the demo provider's address). The child
waits in `run_service` (after its module imports, before it reads its settings), reading
a pipe inherited as the fd named in `TZUROT_START_GATE_FD`:

- a JSON object of environment variables: set them and start;
- end of file without one (the launcher gave up, or died): do not start.

A service started without `TZUROT_START_GATE_FD` (Kubernetes, tests, a respawn) does not
wait. Only the standard library is imported here: the launcher uses it before anything else.

The launcher spawns its children with SIGINT held (`sigint_held`): the terminal's Ctrl-C
reaches them too, and one that came while a child's interpreter starts and imports (before
any code of ours could handle it) would print a KeyboardInterrupt traceback, or land in a
weakref callback ("Exception ignored in ..."). Held, it waits until the child takes it
(`take_sigint`) with a handler that ends it quietly.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

SigintHandler = Callable[[int, FrameType | None], Any]

GATE_FD_ENV = "TZUROT_START_GATE_FD"


def wait_at_gate(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Blocks until the launcher opens the gate and applies the environment it sends.

    True when there is no gate or it opened; False when it was closed without opening.
    """
    raw = environ.pop(GATE_FD_ENV, None)
    if raw is None:
        return True
    with os.fdopen(int(raw), "rb") as pipe:
        data = pipe.read()
    if not data:
        return False
    sent = json.loads(data)
    if not isinstance(sent, dict):
        raise ValueError("the start gate sent something other than a JSON object")
    environ.update({str(key): str(value) for key, value in sent.items()})
    return True


class StartGate:
    """The launcher's end of one child's gate: `child_fd` goes to the child (pass_fds) with
    `child_env()`; then `open(env)` once, or `close()` to cancel the start."""

    def __init__(self) -> None:
        self.child_fd, self._write_fd = os.pipe()
        self._open = True

    def child_env(self) -> dict[str, str]:
        return {GATE_FD_ENV: str(self.child_fd)}

    def spawned(self) -> None:
        """The child holds its copy of the read end now: the launcher's is closed."""
        if self.child_fd >= 0:
            os.close(self.child_fd)
            self.child_fd = -1

    def open(self, env: Mapping[str, str]) -> None:
        """Lets the child start with `env` added to its environment."""
        if not self._open:
            raise RuntimeError("this start gate was already opened or closed")
        data = json.dumps(dict(env)).encode()
        with os.fdopen(self._write_fd, "wb") as pipe:
            pipe.write(data)
        self._open = False

    def close(self) -> None:
        """Cancels the start (the child reads end of file and exits); no-op once opened."""
        self.spawned()
        if self._open:
            os.close(self._write_fd)
            self._open = False


@contextmanager
def sigint_held() -> Iterator[None]:
    """Blocks SIGINT in this thread for the block. A child spawned inside it starts with
    SIGINT blocked (the signal mask is inherited through fork and exec), so a Ctrl-C stays
    pending in it until it calls `take_sigint`. This process's own SIGINT is not lost: it is
    delivered when the block ends (or to another thread at once, where one does not block it).
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def take_sigint(handler: SigintHandler | int) -> None:
    """Installs `handler` for SIGINT, then lets SIGINT in: one held since the spawn
    (`sigint_held`) reaches `handler` now. A no-op mask change where it was never blocked."""
    signal.signal(signal.SIGINT, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
