"""`python -m tzurot.keyvault` with a FIFO as its master key file stops at start in one line,
exit 2, at once: it used to wait on the FIFO for a writer (`tzurot up` hung until its health
wait gave up)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.component.keyvault.test_main import UNREACHABLE_DB, assert_one_line

pytestmark = pytest.mark.component


def test_a_fifo_master_key_file_stops_keyvault_in_one_line(pki: Path, tmp_path: Path) -> None:
    mounted = tmp_path / "master.key"
    os.mkfifo(mounted)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TZUROT_LOG_FORMAT": "json",
        "TZUROT_TLS_DIR": str(pki / "keyvault"),
        "TZUROT_DATABASE_URL": UNREACHABLE_DB,
        "TZUROT_MASTER_KEY_FILE": str(mounted),
    }
    try:
        result = subprocess.run(  # our own interpreter and module, no shell
            [sys.executable, "-m", "tzurot.keyvault"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("keyvault still waited on the FIFO after 60 s")
    err = assert_one_line(result, f"master key file {mounted} is a FIFO, not a regular file")
    assert err.endswith(f"master key file {mounted} is a FIFO, not a regular file")
