"""What the keyvault use-cases need from the outside: a store for sealed keys and the audit log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from tzurot.keyvault.crypto import SealedKey
from tzurot.keyvault.domain import AuditEntry, KeyRecord, KeyUse, Outcome

# Re-encrypts one row's sealed key under the newest version: (user_id, provider, sealed) -> sealed.
Resealer = Callable[[str, str, SealedKey], SealedKey]


class KeyStore(Protocol):
    async def put(self, user_id: str, provider: str, sealed: SealedKey, hint: str) -> KeyRecord:
        """Stores the key for (user, provider), replacing any earlier one."""
        ...

    async def delete(self, user_id: str, provider: str) -> bool:
        """Deletes the key; False when there was none."""
        ...

    async def list_for_user(self, user_id: str) -> list[KeyRecord]: ...

    async def get_sealed_audited(
        self, found: AuditEntry, missing: AuditEntry
    ) -> tuple[int, SealedKey | None]:
        """The sealed key of (`found.user_id`, `found.provider`) and, in the same
        transaction, an audit row: `found` when the key is there, else `missing` (with its
        own provider, outcome and detail); the row's id."""
        ...

    async def correct_audit(self, audit_id: int, outcome: Outcome, detail: str) -> None:
        """Changes how an audit row written by `get_sealed_audited` says its call ended."""
        ...

    async def mark_used(self, user_id: str, provider: str) -> bool:
        """Sets last_used_at to now; False when there is no such key."""
        ...

    async def record_uses(self, uses: Sequence[KeyUse]) -> int:
        """Applies a batch of uses (last used, rejected); how many stored keys it touched."""
        ...

    async def count_wrapped_below(self, version: int) -> int:
        """How many keys are wrapped by a master key version older than `version`."""
        ...

    async def count_keys(self) -> int:
        """How many keys are stored."""
        ...

    async def rewrap_batch(
        self, version: int, limit: int, reseal: Resealer, *, skip_locked: bool
    ) -> int:
        """Re-encrypts up to `limit` keys older than `version` in one transaction; the count."""
        ...

    async def record_audit(self, entry: AuditEntry) -> None: ...
