"""Ctrl-C while `tzurot` still loads (typer and the command line import for a tenth of a
second or more) ends it quietly with 130, as a Ctrl-C in a command does: no traceback.

The installed console script runs, as a user runs it. The interrupt comes at a known point
of the import (PYTHONPROFILEIMPORTTIME reports each module as it finishes), not after a
fixed delay: a delay would race the interpreter's own start (a Ctrl-C while CPython imports
`site` is its "Fatal Python error", before any code of ours runs) and the end of `--help`.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CLI_PYPROJECT = Path(__file__).resolve().parents[3] / "cli" / "pyproject.toml"
SCRIPT = Path(sys.executable).parent / "tzurot"


def test_the_installed_script_runs_the_declared_entry_point() -> None:
    """Else the test below runs an older script: reinstall (`make setup`, i.e. `uv sync`)."""
    declared = tomllib.loads(CLI_PYPROJECT.read_text())["project"]["scripts"]["tzurot"]
    [installed] = importlib.metadata.entry_points(group="console_scripts", name="tzurot")
    assert installed.value == declared, "stale install of tzurot-cli: run `make setup`"
    assert SCRIPT.is_file()


@pytest.fixture(autouse=True)
def sigint_not_ignored() -> Iterator[None]:
    """The command starts as from an interactive shell, with SIGINT's default action: a test
    run in the background (`make test &`) ignores SIGINT, and its children would inherit
    that (an exec keeps an ignored signal ignored, a handled one goes back to default)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupted_after(module: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`tzurot <args>`, sent SIGINT as soon as `module` has been imported."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    process = subprocess.Popen(
        [str(SCRIPT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        seen: list[str] = []
        for line in process.stderr:  # "import time: self | cumulative | <indent>module"
            seen.append(line)
            if line.rsplit("|", 1)[-1].strip() == module:
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, "".join(seen) + err)


@pytest.mark.parametrize(
    "module",
    [
        "getpass",  # the command line's first import: typer is still to come
        "typer.colors",  # typer's first module
        "typer.core",  # typer nearly loaded; the command line's own modules next
    ],
)
def test_ctrl_c_while_the_cli_loads_exits_130_quietly(module: str) -> None:
    done = _interrupted_after(module, ["--help"])
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert module in imported, f"{module} was never imported; pick another:\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr
    assert "KeyboardInterrupt" not in done.stderr
    assert "Usage:" not in done.stdout, "the help was printed: the interrupt came too late"
    assert done.returncode == 130, done.stderr[-2000:]


def test_ctrl_c_while_up_loads_exits_0_as_up_does() -> None:
    """`up` ends with 0 when Ctrl-C stops it, at any point (here nothing had started yet).
    `--help`: were the interrupt late, `up` would print its help, not start a mesh."""
    done = _interrupted_after("typer.colors", ["up", "--help"])
    assert "Traceback" not in done.stderr
    assert "Usage:" not in done.stdout, "the help was printed: the interrupt came too late"
    assert done.returncode == 0, done.stderr[-2000:]
