"""Each service started without what it needs exits with one clear line, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki

pytestmark = pytest.mark.e2e

DB_PASSWORD = "hunter2-db-password"
UNREACHABLE_DB = f"postgresql://tzurot:{DB_PASSWORD}@/core?host=/nonexistent-socket-dir"


def run_service(service: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", ""), "TZUROT_LOG_FORMAT": "json", **env}
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", f"tzurot.{service}"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    err = result.stderr.strip()
    assert result.returncode == 2, result.stderr
    assert "\n" not in err, err
    assert "Traceback" not in err
    assert DB_PASSWORD not in result.stderr + result.stdout
    return err


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    generate_dev_pki(root, SERVICE_IDENTITIES)
    return root


@pytest.mark.parametrize("service", ["gateway", "memory", "inference"])
def test_without_certificates(service: str, tmp_path: Path) -> None:
    err = one_line(
        run_service(
            service,
            {"TZUROT_TLS_DIR": str(tmp_path / "missing"), "TZUROT_DATABASE_URL": UNREACHABLE_DB},
        )
    )
    assert "missing" in err


@pytest.mark.parametrize("service", ["gateway", "memory"])
def test_without_a_database_url(service: str, pki: Path) -> None:
    err = one_line(run_service(service, {"TZUROT_TLS_DIR": str(pki / service)}))
    assert "DATABASE_URL" in err.upper()


@pytest.mark.parametrize("service", ["gateway", "memory"])
def test_with_an_unreachable_database(service: str, pki: Path) -> None:
    err = one_line(
        run_service(
            service, {"TZUROT_TLS_DIR": str(pki / service), "TZUROT_DATABASE_URL": UNREACHABLE_DB}
        )
    )
    assert "database" in err.lower()


def test_bot_needs_a_discord_token(pki: Path) -> None:
    err = one_line(run_service("bot", {"TZUROT_TLS_DIR": str(pki / "bot")}))
    assert "TZUROT_DISCORD_TOKEN" in err
