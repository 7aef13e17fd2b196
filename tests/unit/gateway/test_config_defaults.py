"""Defaults that only make sense together."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from tzurot.gateway.config import GatewaySettings


def test_a_resend_waits_just_past_an_orphaned_jobs_lease_and_no_longer() -> None:
    settings = GatewaySettings(
        tls_dir=Path("/nonexistent"), database_url=SecretStr("postgresql://x")
    )
    # A job orphaned by a killed gateway is taken over by a resend while it still waits...
    assert settings.duplicate_wait_seconds > settings.job_lease_seconds
    # ...and neither is the silent 48 s (or more) a resend once sat through.
    assert settings.duplicate_wait_seconds <= 30


def test_the_unfinished_sweeps_reach_must_outlast_its_wait() -> None:
    """A reach no longer than the wait would hand no abandoned answer over, silently."""
    base: dict[str, Any] = {
        "tls_dir": Path("/nonexistent"),
        "database_url": SecretStr("postgresql://x"),
    }
    settings = GatewaySettings(**base)
    assert settings.unfinished_max_age_seconds > settings.unfinished_after_seconds
    with pytest.raises(ValidationError, match="unfinished_max_age_seconds"):
        GatewaySettings(**base, unfinished_after_seconds=60, unfinished_max_age_seconds=60)


def test_bot_events_outlive_the_unfinished_sweeps_reach() -> None:
    """A shown hand-over's row (its dedup key) may go only once no sweep can read its job: a
    retention shorter than the sweep's reach and a margin is refused at start, as is one
    shorter than three days: a free-will turn's key names a local day, and a guild's day can
    start 26 hours from another's (UTC+14, UTC-12), so a day-old key may name the day to
    come there. Two days were allowed."""
    base: dict[str, Any] = {
        "tls_dir": Path("/nonexistent"),
        "database_url": SecretStr("postgresql://x"),
    }
    settings = GatewaySettings(**base)
    assert settings.bot_events_retention_days == 7
    assert settings.bot_events_retention_days * 86_400 > settings.unfinished_max_age_seconds
    with pytest.raises(ValidationError, match="bot_events_retention_days"):
        GatewaySettings(**base, unfinished_max_age_seconds=3 * 86_400, bot_events_retention_days=3)
    with pytest.raises(ValidationError, match="bot_events_retention_days"):
        GatewaySettings(**base, bot_events_retention_days=1)
    with pytest.raises(ValidationError, match="bot_events_retention_days"):
        GatewaySettings(**base, bot_events_retention_days=2.5)
    assert GatewaySettings(**base, bot_events_retention_days=3).bot_events_retention_days == 3
    longer = GatewaySettings(
        **base, unfinished_max_age_seconds=3 * 86_400, bot_events_retention_days=3.1
    )
    assert longer.bot_events_retention_days == 3.1
