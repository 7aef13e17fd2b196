"""A user's wallet keys: their uses, keyvault's records, and what a provider said of one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class KeyUse:
    """One use of a user's stored key, for keyvault's bookkeeping (key_uses.py)."""

    user_id: str
    provider: str
    used_at: datetime
    rejected: bool = False


@dataclass(frozen=True)
class WalletKey:
    provider: str
    created_at: datetime | None
    last_used_at: datetime | None
    hint: str
    # When the provider last rejected it in use (None: active).
    rejected_at: datetime | None = None
    # When keyvault stored it: changes on every write, also of a key with the same hint (None
    # from a keyvault older than KeyRecord.stored_at). Read back after an unconfirmed write.
    stored_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.rejected_at is None


@dataclass(frozen=True)
class ListedKey(WalletKey):
    """A stored key as the wallet's `list` gives it (never the key itself), flagged."""

    takes_no_key: bool = False
    """Inference says its provider takes no key: this key is never used (`Wallet.list`)."""


@dataclass(frozen=True)
class KeyRestriction:
    """The provider authenticated a key but restricts it (ElevenLabs' "Restrict key"): it
    works, except where it lacks a permission; `missing_permissions` are those the provider's
    refusal named (it may lack others)."""

    missing_permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyCheck:
    """What the provider said of a key: the models (or voices) it sees, and its restriction
    when it has one. `unchecked`: the provider has no free check (Brave Search) and a new key
    was only checked for its form; `billed_requests`: what proving a stored one spent."""

    models: int = 0
    restriction: KeyRestriction | None = None
    unchecked: bool = False
    billed_requests: int = 0


@dataclass(frozen=True)
class StoredKey:
    """A key the wallet stored: keyvault's record and, when the provider restricts the key,
    what it lacks (told to the user, not kept). `unchecked`: stored without a call proving
    it (the provider has no free check, or a superuser skipped it)."""

    key: WalletKey
    restriction: KeyRestriction | None = None
    unchecked: bool = False
