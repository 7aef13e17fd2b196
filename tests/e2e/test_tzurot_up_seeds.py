"""`tzurot up --seeds` with a seed the mesh cannot load, as a user runs it (real processes).

A seed that parses but that the gateway refuses (a missing name) is found only once the mesh is
up: `up` stops it and says which file, in one line (exit 2), not an error about a "document".
One that does not parse is refused before Postgres starts, and leaves nothing running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_tzurot_up import READY_WITHIN
from tzurot.testing.mesh_ports import check_ports, four_free_ports, on_free_ports

pytestmark = pytest.mark.e2e


def up(data: Path, seeds: Path, base: int) -> subprocess.Popen[str]:
    return subprocess.Popen(  # our own interpreter and module, no shell
        [
            sys.executable, "-m", "tzurot.cli", "up", "--demo",
            "--data-dir", str(data), "--base-port", str(base),
            "--seeds", str(seeds),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group: what is left of it can be found
    )  # fmt: skip


def finish(process: subprocess.Popen[str], within: float) -> tuple[str, str]:
    """Its output once it exits; Ctrl-C to its whole group first if it is still up by then."""
    try:
        return process.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        process.communicate(timeout=120)
        raise


def group(pgid: int) -> set[int]:
    """Live processes of process group `pgid`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                found.add(int(entry.name))
    return found


def test_a_seed_the_gateway_refuses_names_its_file(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    seed = tmp_path / "seeds" / "nameless.yaml"
    seed.write_text("aliases: [nobody]\nsystem_prompt: You are nobody.\n")

    def start(base: int) -> tuple[subprocess.Popen[str], str, str]:
        process = up(tmp_path / "data", tmp_path / "seeds", base)
        out, err = finish(process, READY_WITHIN)
        check_ports(err)  # the mesh does start here: its ports must be free
        return process, out, err

    process, out, err = on_free_ports(start)
    assert process.returncode == 2, err
    assert err.strip().splitlines()[-1] == (
        f"tzurot: seed file {seed} was refused: document: name: Field required"
    )
    assert "Traceback" not in err
    assert "Tzurot is up" not in out


def test_a_seed_that_does_not_parse_leaves_nothing_running(tmp_path: Path) -> None:
    seed = tmp_path / "broken.yaml"
    seed.write_text("name: [unclosed\n")
    process = up(tmp_path / "data", seed, four_free_ports())  # refused before it listens
    _, err = finish(process, 60)
    assert process.returncode == 2, err
    assert err.strip().splitlines()[-1].startswith(f"tzurot: seed file {seed} is not valid YAML")
    assert not (tmp_path / "data").exists()
    deadline = time.monotonic() + 30
    while left := group(process.pid):  # the services it had spawned behind their gates
        assert time.monotonic() < deadline, f"still running after up: {left}"
        time.sleep(0.2)
