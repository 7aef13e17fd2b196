"""What keyvault knows about a stored key (never the key itself) and rewrap progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """How a call ended, as written to the audit log."""

    OK = "ok"
    NOT_FOUND = "not_found"
    DENIED = "denied"
    ERROR = "error"


@dataclass(frozen=True)
class KeyRecord:
    """Bookkeeping for one stored key: who, which provider, which wrapping version."""

    user_id: str
    provider: str
    master_key_version: int
    hint: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
    # When the provider last rejected it (None: it works, as far as anyone knows).
    rejected_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.rejected_at is None


@dataclass(frozen=True)
class KeyUse:
    """One use of a stored key, reported by gateway in a batch: when, and whether the
    provider rejected the key. `taken_after`: the key used was read at or after it, so the
    use is only of a key stored by then (None: of whatever key is stored)."""

    user_id: str
    provider: str
    used_at: datetime
    rejected: bool = False
    taken_after: datetime | None = None


@dataclass(frozen=True)
class RewrapProgress:
    """After each batch: the target version, rows re-encrypted so far, rows stale at start."""

    master_key_version: int
    rewrapped: int
    total: int


def key_hint(api_key: str) -> str:
    """At most the last four characters, and never more than a quarter of the key."""
    return api_key[-min(4, len(api_key) // 4) :] if len(api_key) >= 4 else ""


@dataclass(frozen=True)
class AuditEntry:
    """One audit row: who called which method about which key, and how it ended. Never a key."""

    caller: str
    method: str
    user_id: str
    provider: str
    outcome: Outcome
    detail: str = ""
