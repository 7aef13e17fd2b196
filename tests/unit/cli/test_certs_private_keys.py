"""`tzurot certs` run again keeps the CA and the certificates, but not a private key file
opened since: one that others may read is made 0600 again, and the user is told which."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.unit.cli.test_cli_failures import tzurot
from tzurot.cli.private_files import PRIVATE_MODE, private_key_files, tighten
from tzurot.runtime.tls import SERVICE_IDENTITIES


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}


def test_certs_makes_a_loosened_private_key_0600_again_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    first = tzurot("certs", "--out", str(out), env=env(), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    keys = private_key_files(out, SERVICE_IDENTITIES)
    assert [mode(key) for key in keys] == [PRIVATE_MODE] * len(keys)
    kept = {key: key.read_bytes() for key in keys}
    (out / "ca" / "ca.key").chmod(0o644)
    (out / "gateway" / "tls.key").chmod(0o640)

    again = tzurot("certs", "--out", str(out), env=env(), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert again.stderr.splitlines() == [
        f"tzurot: private key {out / 'ca' / 'ca.key'} had mode 0644; made it 0600 (its owner only)",
        f"tzurot: private key {out / 'gateway' / 'tls.key'} had mode 0640; made it 0600 (its "
        "owner only)",
    ]
    assert [mode(key) for key in keys] == [PRIVATE_MODE] * len(keys)
    assert {key: key.read_bytes() for key in keys} == kept  # tightened, not reissued

    third = tzurot("certs", "--out", str(out), env=env(), cwd=tmp_path)
    assert (third.returncode, third.stderr) == (0, "")  # nothing more to say


def test_tighten_leaves_closed_and_missing_files_alone(tmp_path: Path) -> None:
    closed, read_only, executable = tmp_path / "a.key", tmp_path / "b.key", tmp_path / "c.key"
    for path, bits in ((closed, 0o600), (read_only, 0o400), (executable, 0o700)):
        path.write_text("key")
        path.chmod(bits)
    changed = tighten([closed, read_only, executable, tmp_path / "missing.key"])
    assert [(t.path, t.was) for t in changed] == [(executable, 0o700)]
    assert (mode(closed), mode(read_only), mode(executable)) == (0o600, 0o400, 0o600)
