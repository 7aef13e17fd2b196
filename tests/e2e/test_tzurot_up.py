"""`tzurot up --demo` as a user runs it: real processes, then `tzurot chat -m`, then Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tzurot.testing import processes

pytestmark = pytest.mark.e2e

Mesh = tuple[subprocess.Popen[str], dict[str, str], list[str]]
"""The `tzurot up` process, the environment for `tzurot chat`, and what `up` printed."""

REPO = Path(__file__).resolve().parents[2]
READY_WITHIN = 300.0


def free_base_port() -> int:
    """A port p such that p..p+3 are free now (the mesh takes four consecutive ports)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base > 65000:
            continue
        try:
            held = []
            for port in range(base, base + 4):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return base
    raise RuntimeError("no four consecutive free ports")


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Mesh]:
    data = tmp_path_factory.mktemp("data")
    base = free_base_port()
    env = {k: v for k, v in os.environ.items() if k != "TZUROT_DISCORD_TOKEN"}
    env["TZUROT_LOG_FORMAT"] = "json"
    errors = (data / "up.stderr").open("w")  # read when a test fails
    up = subprocess.Popen(  # our own interpreter and module, no shell
        [
            sys.executable,
            "-m",
            "tzurot.cli",
            "up",
            "--demo",
            "--data-dir",
            str(data),
            "--base-port",
            str(base),
            "--seeds",
            str(REPO / "personalities"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + READY_WITHIN
    assert up.stdout is not None
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Try:"):
            break
    if not any(line.startswith("Try:") for line in lines):
        lines.append((data / "up.stderr").read_text()[-3000:])
    chat_env = {
        **env,
        "TZUROT_GATEWAY_ADDR": f"127.0.0.1:{base}",
        "TZUROT_CLI_TLS_DIR": str(data / "certs" / "cli"),
    }
    try:
        yield up, chat_env, lines
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        up.stdout.close()
        errors.close()


def chat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.cli", "chat", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_up_prints_where_each_service_listens(
    mesh: Mesh,
) -> None:
    _, _, lines = mesh
    text = "".join(lines)
    assert "Tzurot is up in" in text, text
    for service in ("gateway", "inference", "memory", "keyvault"):
        assert service in text
    assert "Lilith" in text
    assert "Sage" in text


def test_chat_keeps_history_between_commands(
    mesh: Mesh,
) -> None:
    _, env, _ = mesh
    first = chat(env, "Sage", "--user", "dana", "-m", "the sky is green")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.startswith("Sage> ")
    assert "0 earlier messages" in first.stdout
    assert "the sky is green" in first.stdout

    second = chat(env, "the oracle", "--user", "dana", "-m", "what colour is the sky?")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 earlier messages" in second.stdout


@pytest.mark.parametrize("seed", sorted((REPO / "personalities").glob("*.yaml")), ids=str)
def test_every_seed_personality_answers_in_demo_mode_without_a_key(mesh: Mesh, seed: Path) -> None:
    _, env, _ = mesh
    name = next(
        line.split(":", 1)[1].strip()
        for line in seed.read_text().splitlines()
        if line.startswith("name:")
    )
    result = chat(env, name, "--user", f"keyless-{seed.stem}", "-m", "hello")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{name}> ")
    assert "I heard:" in result.stdout
    assert result.stdout.rstrip().endswith("hello")


def test_the_banner_names_the_commands_of_the_readme(mesh: Mesh) -> None:
    _, _, lines = mesh
    assert any(line.startswith("Try: make chat") for line in lines)


def child_pid(up: subprocess.Popen[str], service: str) -> int:
    """The pid of `tzurot up`'s child running `tzurot.<service>` (forked by its fork server,
    or respawned as `python -m tzurot.<service>`)."""
    found = processes.child_pid(up.pid, service)
    if found is not None:
        return found
    raise LookupError(f"no {service} child of tzurot up")


def earlier_messages(answer: str) -> int:
    """How many earlier messages the demo reply says were in its prompt."""
    found = re.search(r"(\d+) earlier messages? in my prompt", answer)
    assert found, answer
    return int(found.group(1))


def test_a_killed_service_is_restarted_while_the_others_keep_serving(mesh: Mesh) -> None:
    up, env, _ = mesh
    before = chat(env, "Sage", "--user", "frank", "-m", "before the crash")
    assert before.returncode == 0, before.stdout + before.stderr
    gateway = child_pid(up, "gateway")
    memory = child_pid(up, "memory")
    os.kill(memory, signal.SIGKILL)

    # While memory restarts, answers come without history (degraded, never a transport error);
    # once it is back, the history from before the crash is in the prompt again.
    deadline = time.monotonic() + READY_WITHIN
    while True:
        result = chat(env, "Sage", "--user", "frank", "-m", "after the crash")
        assert "Traceback" not in result.stderr
        if result.returncode == 0 and earlier_messages(result.stdout) > 0:
            break
        assert time.monotonic() < deadline, result.stdout + result.stderr
        time.sleep(1)
    assert up.poll() is None
    assert child_pid(up, "memory") != memory
    assert child_pid(up, "gateway") == gateway  # the others were never restarted
    again = chat(env, "Sage", "--user", "frank", "-m", "and again")
    # The answer that saw its history was stored too.
    assert earlier_messages(again.stdout) >= earlier_messages(result.stdout) + 2, again.stdout


def test_ctrl_c_stops_everything(
    mesh: Mesh,
) -> None:
    up, _, _ = mesh
    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=30) == 0


def test_a_service_failing_at_start_stops_the_mesh_with_its_reason(tmp_path: Path) -> None:
    base = free_base_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 3))  # keyvault's port
        squatter.listen()
        result = subprocess.run(
            [
                sys.executable, "-m", "tzurot.cli", "up", "--demo",
                "--data-dir", str(tmp_path / "data"), "--base-port", str(base),
                "--seeds", str(REPO / "personalities"),
            ],
            capture_output=True, text=True, timeout=READY_WITHIN, check=False,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"tzurot-keyvault: cannot start: cannot listen on 127.0.0.1:{base + 3}" in result.stderr
    assert "tzurot up: keyvault exited; stopping the mesh" in result.stderr
    assert "Tzurot is up" not in result.stdout
