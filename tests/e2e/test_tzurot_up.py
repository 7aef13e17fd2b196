"""`tzurot up --demo` as a user runs it: real processes, then `tzurot chat -m`, then Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tzurot.runtime.grpc_options import GRPC_EXPERIMENTS_ENV, SERVICE_GRPC_EXPERIMENTS
from tzurot.testing import processes
from tzurot.testing.mesh_ports import check_ports, on_free_ports

pytestmark = pytest.mark.e2e

Mesh = tuple[subprocess.Popen[str], dict[str, str], list[str]]
"""The `tzurot up` process, the environment for `tzurot chat`, and what `up` printed."""

REPO = Path(__file__).resolve().parents[2]
READY_WITHIN = 300.0


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Mesh]:
    data = tmp_path_factory.mktemp("data")
    # Without GRPC_EXPERIMENTS, as a shell starts `make run`: `up` sets it for the services.
    env = {
        k: v for k, v in os.environ.items() if k not in ("TZUROT_DISCORD_TOKEN", "GRPC_EXPERIMENTS")
    }
    env["TZUROT_LOG_FORMAT"] = "json"

    def start(base: int) -> tuple[subprocess.Popen[str], int, list[str]]:
        with (data / "up.stderr").open("w") as errors:  # read when a test fails
            up = subprocess.Popen(  # our own interpreter and module, no shell
                [
                    sys.executable, "-m", "tzurot.cli", "up", "--demo",
                    "--data-dir", str(data), "--base-port", str(base),
                    "--seeds", str(REPO / "personalities"),
                ],
                env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
            )  # fmt: skip
        lines = banner(up)
        if not any(line.startswith("Try:") for line in lines):
            lines.append((data / "up.stderr").read_text()[-3000:])
            if up.poll() is not None:
                assert up.stdout is not None
                up.stdout.close()
                check_ports(lines[-1])
        return up, base, lines

    up, base, lines = on_free_ports(start)
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
        assert up.stdout is not None
        up.stdout.close()


def banner(up: subprocess.Popen[str]) -> list[str]:
    """What `up` printed until its banner's last line ("Try: ..."), or until it exited."""
    lines: list[str] = []
    deadline = time.monotonic() + READY_WITHIN
    assert up.stdout is not None
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:  # its output ended: it exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                up.wait(timeout=30)
            break
        lines.append(line)
        if line.startswith("Try:"):
            break
    return lines


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def chat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return cli(env, "chat", *args)


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


def test_the_banner_says_how_to_reach_a_mesh_elsewhere(mesh: Mesh) -> None:
    """This mesh runs on other ports and data than the defaults: the banner's exports are all
    `tzurot chat` and `tzurot admin` need to find it."""
    _, env, lines = mesh
    line = next(line for line in lines if line.startswith("Not at the defaults"))
    exported = dict(item.split("=", 1) for item in shlex.split(line.split("export ", 1)[1]))
    clean = {k: v for k, v in env.items() if not k.startswith("TZUROT_")}
    told = {**clean, **exported}
    answer = cli(told, "chat", "Sage", "--user", "erin", "-m", "hi")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    health = cli(told, "admin", "health")
    assert health.returncode == 0, health.stdout + health.stderr


def test_the_wallet_through_the_cli_never_shows_the_key(mesh: Mesh) -> None:
    _, env, _ = mesh
    key = "sk-or-v1-e2e-planted-cli-key-91c2"
    stored = cli(env, "wallet", "set", "openrouter", "--user", "gus", "--key-stdin", stdin=key)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    assert stored.stdout == "Stored your openrouter key (…91c2).\n"
    runs = [
        stored,
        cli(env, "wallet", "list", "--user", "gus"),
        cli(env, "wallet", "test", "openrouter", "--user", "gus"),
        cli(env, "wallet", "remove", "openrouter", "--user", "gus"),
    ]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], [r.stdout + r.stderr for r in runs]
    assert runs[1].stdout.startswith("openrouter   …91c2")
    assert runs[2].stdout.startswith("openrouter: the key works")
    for run in runs:
        assert key not in run.stdout + run.stderr
    gone = cli(env, "wallet", "test", "openrouter", "--user", "gus")
    assert gone.returncode == 1
    assert gone.stderr.startswith("tzurot: [not_found] ")
    assert "tzurot wallet set openrouter" in gone.stderr  # advice in CLI words


def child_pid(up: subprocess.Popen[str], service: str) -> int:
    """The pid of `tzurot up`'s child running `tzurot.<service>` (forked by its fork server,
    or respawned as `python -m tzurot.<service>`)."""
    found = processes.child_pid(up.pid, service)
    if found is not None:
        return found
    raise LookupError(f"no {service} child of tzurot up")


def test_every_service_runs_with_the_services_grpc_experiments(mesh: Mesh) -> None:
    up, _, _ = mesh
    for service in ("gateway", "inference", "memory", "keyvault"):
        environ = Path(f"/proc/{child_pid(up, service)}/environ").read_bytes().split(b"\0")
        wanted = f"{GRPC_EXPERIMENTS_ENV}={SERVICE_GRPC_EXPERIMENTS}".encode()
        assert wanted in environ, service


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
    def start(base: int) -> tuple[int, subprocess.CompletedProcess[str]]:
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
        check_ports(result.stderr, expected=base + 3)
        return base, result

    base, result = on_free_ports(start)
    assert result.returncode == 1, result.stderr
    assert f"tzurot-keyvault: cannot start: cannot listen on 127.0.0.1:{base + 3}" in result.stderr
    assert "tzurot up: keyvault exited; stopping the mesh" in result.stderr
    assert "Tzurot is up" not in result.stdout


def descendants(root: int) -> set[int]:
    """Every live process under `root` (its children, theirs, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("after", [0.5, 2.0])
def test_ctrl_c_while_starting_stops_everything_quietly(tmp_path: Path, after: float) -> None:
    """Ctrl-C in the terminal of a `tzurot up` that is still starting (importing, making the
    database, migrating): every process it started gets SIGINT too. It ends with 0, no
    traceback, no failure blamed on what the interrupt stopped, and nothing left running."""

    def start(base: int) -> tuple[subprocess.Popen[str], set[int], str]:
        up = subprocess.Popen(  # our own interpreter and module, no shell
            [
                sys.executable, "-m", "tzurot.cli", "up", "--demo",
                "--data-dir", str(tmp_path / "data"), "--base-port", str(base),
                "--seeds", str(REPO / "personalities"),
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )  # fmt: skip
        time.sleep(after)  # the point of the start it is interrupted at: any will do
        started = descendants(up.pid)
        os.killpg(up.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = up.communicate(timeout=120)
        check_ports(err)
        return up, started, err

    up, started, err = on_free_ports(start)
    assert up.returncode == 0, err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert "did not start" not in err
    assert "exited; stopping the mesh" not in err
    deadline = time.monotonic() + 30
    while left := {pid for pid in started if alive(pid)}:
        assert time.monotonic() < deadline, f"still running after up: {left}"
        time.sleep(0.2)
