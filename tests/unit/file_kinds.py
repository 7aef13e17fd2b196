"""What a test puts where a regular file should be (a FIFO, a socket, a folder), and a call
that must not wait on a FIFO run with a time limit: the key and certificate readers of the
CLI, keyvault and the runtime are tested with the same ones."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def fifo(path: Path) -> Iterator[str]:
    os.mkfifo(path)
    yield "a FIFO"


def unix_socket(path: Path) -> Iterator[str]:
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        yield "a socket"


def folder(path: Path) -> Iterator[str]:
    path.mkdir()
    yield "a folder"


KINDS = {"fifo": fifo, "socket": unix_socket, "folder": folder}
"""Each makes the thing at `path` and yields how a refusal names it, while it is there."""


def finished_within(call: Callable[[], object], fifo: Path, seconds: float) -> BaseException | None:
    """What `call` raised (None when it returned), or a failure when it still waits after
    `seconds` (then a writer opens and closes the FIFO, so a waiting open returns and the
    thread ends)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # releases the open
        thread.join(10)
        pytest.fail(f"still waiting on the FIFO {fifo.name} after {seconds} s")
    return raised[0] if raised else None


def raised_within(call: Callable[[], object], fifo: Path, seconds: float) -> BaseException:
    """What `call` raised (`finished_within`); a failure when it returned (it read the FIFO)."""
    raised = finished_within(call, fifo, seconds)
    assert raised is not None, "it read the FIFO"
    return raised
