"""Defaults that only make sense together."""

from pathlib import Path

from pydantic import SecretStr

from tzurot.gateway.config import GatewaySettings


def test_a_resend_waits_just_past_an_orphaned_jobs_lease_and_no_longer() -> None:
    settings = GatewaySettings(
        tls_dir=Path("/nonexistent"), database_url=SecretStr("postgresql://x")
    )
    # A job orphaned by a killed gateway is taken over by a resend while it still waits...
    assert settings.duplicate_wait_seconds > settings.job_lease_seconds
    # ...and neither is the silent 48 s (or more) a resend once sat through.
    assert settings.duplicate_wait_seconds <= 30
