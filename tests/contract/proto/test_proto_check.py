"""`make proto-check` fails on a breaking contract change, whether the change is on a branch
(judged against its merge base with main) or already on main (judged against the commit before
the last proto change), never passing by comparing the tree with itself.

Each case clones this checkout into a scratch directory, commits a change there, regenerates
the stubs (so only the breaking check can fail) and runs the real Makefile target with this
checkout's tools (`-o setup`: the clone borrows the installed environment and buf).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.contract
ROOT = Path(__file__).resolve().parents[3]
COMMON = Path("proto/tzurot/v1/common.proto")


def _run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _git(cwd: Path, *args: str) -> str:
    done = _run(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@t", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    uv = shutil.which("uv") or str(ROOT / ".tools/bin/uv")
    if not (ROOT / "node_modules/.bin/buf").exists() or not (ROOT / ".venv").exists():
        pytest.fail("run `make setup` first: the check needs buf and the Python environment")
    repo = tmp_path / "repo"
    _git(ROOT, "clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo))
    _git(repo, "checkout", "--quiet", "-B", "main", _git(ROOT, "rev-parse", "HEAD"))
    # Uncommitted work of this checkout is not in the clone: copy proto/ and the stubs as they
    # are here, and commit them as the clone's main, so the base is exactly this tree.
    for part in ("proto", "libs/proto/src/tzurot/v1", "deploy/k8s/base/edge/gateway.pb",
                 "docs/contracts", "scripts", "Makefile", "buf.yaml"):  # fmt: skip
        source, target = ROOT / part, repo / part
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "--allow-empty", "-m", "base")
    (repo / "node_modules").symlink_to(ROOT / "node_modules")
    env = {
        **os.environ,
        "UV": uv,
        "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv"),
        "UV_NO_SYNC": "1",
    }
    return repo, env


def _break_the_contract(repo: Path, env: dict[str, str]) -> None:
    """Removes Location.thread_id (field 3): old clients' data is misread. Stubs regenerated."""
    path = repo / COMMON
    text = path.read_text()
    assert "  string thread_id = 3;\n" in text
    path.write_text(text.replace("  string thread_id = 3;\n", ""))
    done = _run(repo, "scripts/gen_proto.sh", env=env)
    assert done.returncode == 0, done.stderr
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "drop Location.thread_id")


def _proto_check(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run(repo, "make", f"UV={env['UV']}", "-o", "setup", "proto-check", env=env)


def test_the_unchanged_tree_passes(clone: tuple[Path, dict[str, str]]) -> None:
    repo, env = clone
    done = _proto_check(repo, env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_breaking_change_on_a_branch_fails(clone: tuple[Path, dict[str, str]]) -> None:
    repo, env = clone
    _git(repo, "checkout", "--quiet", "-b", "feature")
    _break_the_contract(repo, env)
    done = _proto_check(repo, env)
    assert done.returncode != 0
    assert "thread_id" in done.stdout + done.stderr  # buf names what broke
    assert "stubs are stale" not in done.stderr


def test_a_breaking_change_landed_on_main_fails(clone: tuple[Path, dict[str, str]]) -> None:
    repo, env = clone
    _break_the_contract(repo, env)  # committed on main itself, as after a landing
    done = _proto_check(repo, env)
    assert done.returncode != 0
    assert "thread_id" in done.stdout + done.stderr
