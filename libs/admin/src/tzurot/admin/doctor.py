"""`doctor`'s certificate checks: our own certificate and the one each service presents.

Each service's certificate is read from a TLS handshake with it (presenting ours, as mTLS
requires), so the check sees what clients see, wherever the command runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from typing import Any

from cryptography import x509

from tzurot.admin.connect import SERVICES, AdminSettings


def _verdict(name: str, cert: x509.Certificate, warn_days: int) -> dict[str, Any]:
    expires = cert.not_valid_after_utc
    left = expires - dt.datetime.now(dt.UTC)
    days = left.total_seconds() / 86400
    ok = days >= warn_days
    state = "expired" if days < 0 else f"expires in {days:.0f} days"
    detail = f"{state} ({expires:%Y-%m-%d})" + ("" if ok else f", under {warn_days} days")
    return {"name": name, "ok": ok, "expires": expires.isoformat(), "detail": detail}


async def _served_certificate(
    address: str, server_identity: str, settings: AdminSettings
) -> x509.Certificate:
    folder = settings.identity_dir
    context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    context.load_cert_chain(folder / "tls.crt", folder / "tls.key")
    context.set_alpn_protocols(["h2"])
    host, _, port = address.rpartition(":")
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, int(port), ssl=context, server_hostname=server_identity),
        timeout=5.0,
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der)


async def certificate_report(settings: AdminSettings, warn_days: int) -> list[dict[str, Any]]:
    folder = settings.identity_dir
    own = x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes())
    report = [_verdict(f"ours ({folder})", own, warn_days)]
    for service in SERVICES:
        name = f"{service} ({settings.address(service)})"
        try:
            cert = await _served_certificate(settings.address(service), service, settings)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            report.append({"name": name, "ok": False, "expires": None, "detail": str(exc)})
            continue
        report.append(_verdict(name, cert, warn_days))
    return report
