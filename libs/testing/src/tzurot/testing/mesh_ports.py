"""Free loopback ports for a `tzurot up` that a test starts, tried again on others when one
was taken before `up` could bind it.

A port found free is only free when looked at: ports found free are ephemeral ones, and an
outgoing connection elsewhere on the host (or another test) may take one before `up` binds it.
The service on it then stops, saying "cannot listen on <addr>", and `up` stops the mesh. A
start that ends so is not the test's failure: it is tried again on other ports (three times
at most).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tzurot.testing.processes import free_port

MESH_PORTS = 4
"""gateway, inference, memory and keyvault, on `--base-port` … `--base-port` + 3."""
ATTEMPTS = 3
_CANNOT_LISTEN = re.compile(r"cannot listen on \S*:(\d+)")

T = TypeVar("T")


class PortTaken(RuntimeError):
    """A start that could not listen on a port found free just before (taken meanwhile)."""


def four_free_ports() -> int:
    """A base port p such that p … p+3 are free now (the mesh takes four in a row)."""
    for _ in range(50):
        base = free_port()
        if base + MESH_PORTS <= 65535 and all(_free(p) for p in range(base, base + MESH_PORTS)):
            return base
    raise RuntimeError("no four consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def taken_ports(output: str) -> set[int]:
    """The ports that `up`'s output says a service could not listen on."""
    return {int(port) for port in _CANNOT_LISTEN.findall(output)}


def check_ports(output: str, *, expected: int | None = None) -> None:
    """Raises PortTaken if `output` says a port other than `expected` (one the test took on
    purpose) could not be listened on; the start that wrote it is then tried again."""
    if taken_ports(output) - {expected}:
        raise PortTaken(f"a port found free was taken before `tzurot up` bound it:\n{output}")


def on_free_ports(start: Callable[[int], T]) -> T:
    """`start(base_port)` on four free ports; on others if it raised PortTaken (it cleans up
    what it started first), at most ATTEMPTS times."""
    for attempt in range(ATTEMPTS):
        try:
            return start(four_free_ports())
        except PortTaken:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def on_free_ports_async(start: Callable[[int], Awaitable[T]]) -> T:
    """`on_free_ports` for a start that is a coroutine."""
    for attempt in range(ATTEMPTS):
        try:
            return await start(four_free_ports())
        except PortTaken:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
