"""The README's commands work as written on a fresh machine, and the banner says the same.

`make run` puts uv in .tools/bin (not on the PATH), so `uv run tzurot …` fails there; the
README and the banner use `make chat` and `.venv/bin/tzurot`, which `make run` installs.
"""

import re
from pathlib import Path

from tzurot.cli.mesh import CHAT_HINT

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def _shell_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]


def test_no_readme_command_needs_uv_on_the_path() -> None:
    assert "uv run tzurot" not in README
    for line in _shell_lines():
        assert not line.startswith("uv "), line


def test_every_make_target_the_readme_uses_exists() -> None:
    targets = set(re.findall(r"^([a-z0-9-]+):", MAKEFILE, flags=re.M))
    used = {m for line in _shell_lines() for m in re.findall(r"\bmake ([a-z0-9-]+)", line)}
    used |= set(re.findall(r"`make ([a-z0-9-]+)", README))
    assert used
    assert used <= targets, used - targets


def test_the_banner_suggests_what_the_readme_shows() -> None:
    for command in re.findall(r"make chat|\.venv/bin/tzurot chat", CHAT_HINT):
        assert command in README


def test_the_tzurot_command_is_what_make_installs() -> None:
    assert any(line.startswith(".venv/bin/tzurot ") for line in _shell_lines())
    assert "tzurot = " in (ROOT / "cli" / "pyproject.toml").read_text()
