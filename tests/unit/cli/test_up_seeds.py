"""`tzurot up --seeds`: a seed file or a folder of them, checked before the mesh starts.

A path that is not there, or a file that is not a YAML mapping, is one line naming it (exit 2)
before Postgres, certificates or any service start: not a mesh without its personalities, nor
a failure after the whole start. (A seed the gateway refuses: tests/e2e/test_tzurot_up_seeds.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.cli.test_cli_failures import one_line
from tzurot.cli.seeds import DEFAULT_SEEDS, SeedError, read_seeds, seed_files
from tzurot.testing.mesh_ports import four_free_ports

SEED = b"name: Wren\nsystem_prompt: You are Wren.\n"


def up(seeds: Path, data: Path) -> str:
    """The one line of `tzurot up --seeds <seeds>` refused (exit 2), having started nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    command = [sys.executable, "-m", "tzurot.cli", "up", "--data-dir", str(data)]
    command += ["--base-port", str(four_free_ports()), "--seeds", str(seeds)]
    process = subprocess.Popen(  # our own interpreter and module, no shell
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, stopped whole if it did start a mesh
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: `up` stops all it started
        process.communicate(timeout=120)
        raise
    result = subprocess.CompletedProcess(command, process.returncode, out, err)
    err = one_line(result, 2)
    assert result.stdout == ""
    assert not data.exists()  # no certificates, no master key, no Postgres
    return err


def test_seeds_not_there_are_refused_before_anything(tmp_path: Path) -> None:
    missing = tmp_path / "personalites"  # a typo
    assert up(missing, tmp_path / "data") == f"tzurot: --seeds {missing}: no such file or folder"


def test_a_seed_that_is_not_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "a.yaml").write_bytes(SEED)
    broken = tmp_path / "seeds" / "b.yaml"
    broken.write_text("name: [Wren\nsystem_prompt: : x\n")
    for given in (tmp_path / "seeds", broken):  # in a folder, or given alone
        assert up(given, tmp_path / "data") == (
            f"tzurot: seed file {broken} is not valid YAML: line 2, column 14: "
            "expected ',' or ']', but got ':'"
        )


def test_a_seed_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    seed = tmp_path / "wren.yaml"
    seed.write_text("- Wren\n")
    assert up(seed, tmp_path / "data") == (
        f"tzurot: seed file {seed} is not a YAML mapping of personality fields"
    )


def test_a_file_is_its_own_seed_and_a_folder_gives_its_yaml_in_order(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yaml", "notes.txt"):
        (tmp_path / name).write_bytes(SEED)
    assert seed_files(tmp_path / "b.yaml") == [tmp_path / "b.yaml"]
    assert seed_files(tmp_path) == [tmp_path / "a.yaml", tmp_path / "b.yaml"]
    assert [s.document for s in read_seeds(seed_files(tmp_path))] == [SEED, SEED]


def test_without_seeds_the_default_folder_is_optional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./personalities here: `up` starts without personalities
    assert seed_files(None) == []
    (tmp_path / DEFAULT_SEEDS).mkdir()
    (tmp_path / DEFAULT_SEEDS / "wren.yaml").write_bytes(SEED)
    assert seed_files(None) == [DEFAULT_SEEDS / "wren.yaml"]
    with pytest.raises(SeedError, match="no such file or folder"):
        seed_files(DEFAULT_SEEDS / "gone.yaml")
