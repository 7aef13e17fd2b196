"""What `tzurot up` and each service import before they can start, asserted as module sets (no
timings; the figures are bench `cold_start` and docs/PERFORMANCE.md, issue 16).

A service spawned by `up` imports its whole `__main__` behind its start gate, on a machine whose
2 cores every interpreter of the mesh shares: whatever loads there is CPU the start pays. `up`
itself reads the migration heads without Alembic or SQLAlchemy (tzurot.db.heads); the parsers,
codecs and image library of features no start needs load on first use."""

import subprocess
import sys

import pytest

PROBE = """
import sys
{imports}
{then}
print("LOADED", " ".join(m for m in {heavy!r} if m in sys.modules))
"""


def _loaded(imports: str, heavy: tuple[str, ...], then: str = "") -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports, heavy=heavy, then=then)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("LOADED"))
    return line.split()[1:]


UP_MODULES = """
import tzurot.cli.__main__, tzurot.cli.processes, tzurot.cli.mesh, tzurot.cli.migrate
import tzurot.cli.localdb, tzurot.cli.demo
"""
UP_HEAVY = (
    "sqlalchemy",
    "alembic",
    "pydantic",
    "pydantic_settings",
    "structlog",
    "rich",
    "tzurot.gateway.tables",
    "tzurot.memory.tables",
    "tzurot.keyvault.tables",
)


def test_up_reads_the_migration_heads_without_alembic_or_sqlalchemy() -> None:
    then = """
from tzurot.db.heads import installed_migrations, script_heads
assert all(script_heads(m.script_location) for m in installed_migrations())
"""
    assert _loaded(UP_MODULES, UP_HEAVY, then) == []


# Loaded on first use: card images (Pillow), audio (PyAV), web pages and PDFs (trafilatura,
# pypdf). Not listed: what the first turn needs anyway (SQLAlchemy, openai, numpy, the stemmer).
LAZY = ("PIL", "av", "trafilatura", "pypdf", "alembic")


@pytest.mark.parametrize("service", ["gateway", "inference", "memory", "keyvault"])
def test_a_service_start_path_leaves_features_for_first_use(service: str) -> None:
    assert _loaded(f"import tzurot.{service}.__main__", LAZY) == []
