"""Writes the dev overlay's Secret inputs into deploy/k8s/overlays/dev/secrets/ (git-ignored).

A dev CA and one certificate per identity (SANs: the Service names in namespace tzurot), a
master key, Postgres role passwords and the database URLs made from them, and placeholders for
the Discord token and the operator's provider keys. Idempotent: what exists is kept, so
re-running never rotates a key under a running cluster. Run by `make k8s-check` and before
`kubectl apply -k deploy/k8s/overlays/dev` (docs/OPERATIONS.md).
"""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path

from tzurot.runtime.tls import generate_dev_pki

OUT = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "overlays" / "dev" / "secrets"
IDENTITIES = ("gateway", "inference", "memory", "keyvault", "bot", "edge", "cli")
ROLES = {"gateway": "gateway", "memory": "memory", "keyvault": "keyvault"}
"""Service -> its database role (each owns only its own schema)."""


def _keep_or_write(path: Path, make: str) -> str:
    if not path.exists():
        path.write_text(make)
        path.chmod(0o600)
    return path.read_text()


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    hosts = ("localhost", "127.0.0.1")
    generate_dev_pki(out / "tls", IDENTITIES, hosts=hosts)
    _keep_or_write(out / "master.key", f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}\n")
    _keep_or_write(out / "postgres-password", secrets.token_urlsafe(24))
    for service, role in ROLES.items():
        password = _keep_or_write(out / f"{role}-password", secrets.token_urlsafe(24))
        url = f"postgresql://{role}:{password}@postgres:5432/tzurot"
        (out / f"{service}-database-url").write_text(url)
    _keep_or_write(out / "discord-token", "set-your-discord-bot-token-here")
    _keep_or_write(out / "system-keys.json", "{}")
    print(f"dev secrets in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
