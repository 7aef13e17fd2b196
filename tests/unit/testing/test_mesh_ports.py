"""A `tzurot up` started on ports found free is started again elsewhere when one was taken
before it bound it (tzurot.testing.mesh_ports), and on none other than that."""

from __future__ import annotations

import socket

import pytest

from tzurot.testing import mesh_ports
from tzurot.testing.mesh_ports import PortTaken, check_ports, on_free_ports, taken_ports

TAKEN = (
    "tzurot-memory: cannot start: cannot listen on 127.0.0.1:41002"
    " (in use or not a valid host:port)"  # runtime/server.py, as `up` prints it
)


def test_the_port_a_service_could_not_listen_on_is_read_from_up_s_output() -> None:
    assert taken_ports(f"starting...\n{TAKEN}\ntzurot up: memory exited; stopping the mesh\n") == {
        41002
    }
    assert taken_ports("Tzurot is up in 3.1 s\n") == set()
    check_ports("Tzurot is up in 3.1 s\n")  # nothing taken: no retry
    check_ports(TAKEN, expected=41002)  # the port the test took on purpose
    with pytest.raises(PortTaken):
        check_ports(TAKEN, expected=41003)


def test_four_free_ports_are_free_and_in_range() -> None:
    base = mesh_ports.four_free_ports()
    assert base + 3 <= 65535
    for port in range(base, base + 4):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_start_that_lost_a_port_is_tried_on_others_three_times_at_most() -> None:
    bases: list[int] = []

    def lost_twice(base: int) -> int:
        bases.append(base)
        if len(bases) < 3:
            check_ports(TAKEN)
        return base

    assert on_free_ports(lost_twice) == bases[-1]
    assert len(bases) == 3

    bases.clear()

    def lost_always(base: int) -> int:
        bases.append(base)
        check_ports(TAKEN)
        return base

    with pytest.raises(PortTaken, match="taken before `tzurot up` bound it"):
        on_free_ports(lost_always)
    assert len(bases) == 3


async def test_the_async_start_is_tried_again_too() -> None:
    tries: list[int] = []

    async def lost_once(base: int) -> int:
        tries.append(base)
        if len(tries) == 1:
            check_ports(TAKEN)
        return base

    assert await mesh_ports.on_free_ports_async(lost_once) == tries[-1]
    assert len(tries) == 2
