"""Keyvault's use-cases: store, list, delete, decrypt, mark used, rewrap. No gRPC here.

Every call writes one audit row (caller identity, method, user, provider, outcome) after
it finishes, and fails if that row cannot be written: a key is never handed out unaudited.
Decrypt writes its row with the read of the sealed key, in the same statement (one commit
a turn fewer), and corrects it when the call then fails. Audit rows carry the user only when
it passed validation, the provider only when the call found or stored a key under it (see
`_audited`; Decrypt's miss too), and never a key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from pydantic import SecretStr

from tzurot.keyvault.crypto import KeyDecryptError, MasterKeyRing
from tzurot.keyvault.domain import (
    AuditEntry,
    KeyRecord,
    KeyUse,
    Outcome,
    RewrapProgress,
    key_hint,
)
from tzurot.keyvault.ports import KeyStore
from tzurot.keyvault.validation import (
    check_api_key,
    check_batch_size,
    check_provider,
    check_user_id,
)
from tzurot.runtime.errors import Internal, InvalidArgument, NotFound, StartupError, TzurotError
from tzurot.runtime.identity import current_caller

log = structlog.get_logger("tzurot.keyvault")

UNKNOWN_CALLER = "unknown"
DEFAULT_BATCH_SIZE = 100
MAX_USES_PER_BATCH = 1000


@dataclass
class _Note:
    """What a use-case tells its audit row on success."""

    outcome: Outcome = Outcome.OK
    detail: str = ""
    written: tuple[int, Outcome, str] | None = None
    """An audit row the use-case already wrote (its id, outcome, detail): corrected, not
    written again, when the call ends otherwise."""
    stored: bool = False
    """The store found or stored a key under the call's provider: only then does the audit
    row name the provider (see `_audited`)."""


def _valid_or_blank(value: str, check: Callable[[str], str]) -> str:
    try:
        return check(value)
    except TzurotError:
        return ""


def _unquoted(detail: str, provider: str) -> str:
    """`detail` with `provider` (as a whole word) replaced by an ellipsis."""
    return re.sub(rf"(?<![\w.-]){re.escape(provider)}(?![\w.-])", "…", detail)


def no_key(provider: str) -> NotFound:
    return NotFound(f"no {provider} key stored for this user", reason="NO_API_KEY")


class KeyVault:
    """The use-cases behind the KeyVaultService RPCs."""

    def __init__(
        self,
        store: KeyStore,
        ring: MasterKeyRing,
        *,
        caller: Callable[[], str | None] = current_caller,
        default_batch_size: int = DEFAULT_BATCH_SIZE,
        ring_source: Callable[[], MasterKeyRing] | None = None,
    ) -> None:
        self._store = store
        self._ring = ring
        self._ring_source = ring_source
        self._caller = caller
        self._default_batch_size = default_batch_size

    @property
    def newest_version(self) -> int:
        return self._ring.newest_version

    async def reload_ring(self) -> bool:
        """Re-reads the master key source (the mounted file), e.g. after a version was added.

        The new ring must keep every version of the current one unchanged, or a stored key
        could become unreadable: such a ring (or an unreadable source) is refused and the
        current ring stays. True when the ring gained a version.
        """
        if self._ring_source is None:
            return False
        try:
            ring = await asyncio.to_thread(self._ring_source)
        except StartupError as exc:
            log.error("master key reload refused", reason=str(exc))
            return False
        if not ring.extends(self._ring):
            log.error("master key reload refused", reason="a known version is missing or changed")
            return False
        if ring.versions == self._ring.versions:
            return False
        self._ring = ring
        log.info("master key ring reloaded", versions=list(ring.versions))
        return True

    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> KeyRecord:
        """Encrypts and stores the key, replacing any earlier key for (user, provider)."""
        async with self._audited("PutKey", user_id, provider) as note:
            check_user_id(user_id)
            check_provider(provider)
            check_api_key(api_key)
            sealed = self._ring.encrypt(user_id, provider, api_key)
            record = await self._store.put(
                user_id, provider, sealed, key_hint(api_key.get_secret_value())
            )
            note.stored = True
            note.detail = f"master key version {record.master_key_version}"
            log.info("key stored", user_id=user_id, provider=provider)
            return record

    async def delete_key(self, user_id: str, provider: str) -> bool:
        """Deletes the key; False (audited as not_found) when there was none."""
        async with self._audited("DeleteKey", user_id, provider) as note:
            check_user_id(user_id)
            check_provider(provider)
            deleted = await self._store.delete(user_id, provider)
            note.stored = deleted
            if not deleted:
                note.outcome = Outcome.NOT_FOUND
            return deleted

    async def list_keys(self, user_id: str) -> list[KeyRecord]:
        """What is stored for a user, by provider; never a key."""
        async with self._audited("ListKeys", user_id, "") as note:
            check_user_id(user_id)
            records = await self._store.list_for_user(user_id)
            note.detail = f"{len(records)} keys"
            return records

    async def decrypt(self, user_id: str, provider: str) -> SecretStr:
        """The plaintext key, wrapped; changes nothing stored (see mark_used)."""
        async with self._audited("Decrypt", user_id, provider) as note:
            check_user_id(user_id)
            check_provider(provider)
            missing = no_key(provider)
            said = _unquoted(missing.message, provider)  # a miss names no provider
            entry = AuditEntry(
                self._caller() or UNKNOWN_CALLER, "Decrypt", user_id, provider, Outcome.OK
            )
            audit_id, sealed = await self._store.get_sealed_audited(
                entry,
                dataclasses.replace(entry, provider="", outcome=Outcome.NOT_FOUND, detail=said),
            )
            if sealed is None:
                note.written = (audit_id, Outcome.NOT_FOUND, said)
                raise missing
            note.stored = True  # found: its row names the provider
            note.written = (audit_id, Outcome.OK, "")
            if sealed.master_key_version not in self._ring.versions:
                # Another replica rewrapped it under a version added after we started.
                await self.reload_ring()
            try:
                return self._ring.decrypt(user_id, provider, sealed)
            except KeyDecryptError as exc:
                log.error("stored key cannot be decrypted", error=str(exc))
                raise Internal(str(exc)) from None

    async def mark_used(self, user_id: str, provider: str) -> None:
        """Records that the key was just used."""
        async with self._audited("MarkUsed", user_id, provider) as note:
            check_user_id(user_id)
            check_provider(provider)
            if not await self._store.mark_used(user_id, provider):
                raise no_key(provider)
            note.stored = True

    async def record_uses(self, uses: Sequence[KeyUse]) -> int:
        """A batch of uses from gateway: last used times, and rejections that make a key
        inactive until it works again or is replaced. Keys removed since are skipped."""
        async with self._audited("MarkUsed", "", "") as note:
            if len(uses) > MAX_USES_PER_BATCH:
                raise InvalidArgument(
                    "uses", f"at most {MAX_USES_PER_BATCH} uses in one call, got {len(uses)}"
                )
            for use in uses:
                check_user_id(use.user_id)
                check_provider(use.provider)
            touched = await self._store.record_uses(uses)
            rejected = sum(use.rejected for use in uses)
            note.detail = f"{len(uses)} uses, {rejected} rejected, {touched} keys"
            return touched

    async def rewrap(self, batch_size: int = 0) -> AsyncGenerator[RewrapProgress, None]:
        """Re-encrypts every key older than the newest master key version, batch by batch.

        Yields progress after each batch (once, with zeros, when nothing is stale). Rows
        locked by other work are skipped, then waited for once nothing else is left, so a
        finished run leaves no stale row; an interrupted run resumes where it stopped.
        """
        async with self._audited("RewrapKeys", "", "") as note:
            size = check_batch_size(batch_size, self._default_batch_size)
            await self.reload_ring()  # picks up a version appended to the key file
            version = self._ring.newest_version
            total = await self._store.count_wrapped_below(version)
            done = 0
            note.detail = f"0 of {total} to version {version}"
            while count := await self._rewrap_one_batch(version, size):
                done += count
                note.detail = f"{done} of {max(total, done)} to version {version}"
                yield RewrapProgress(version, done, max(total, done))
            if done == 0:
                yield RewrapProgress(version, 0, total)
            log.info("rewrap finished", master_key_version=version, rewrapped=done)

    async def rewrap_status(self) -> RewrapProgress:
        """Where a rotation stands: (newest version, keys re-wrapped to it, all keys)."""
        await self.reload_ring()
        version = self._ring.newest_version
        stale = await self._store.count_wrapped_below(version)
        total = await self._store.count_keys()
        return RewrapProgress(version, total - stale, total)

    async def _rewrap_one_batch(self, version: int, size: int) -> int:
        reseal = self._ring.rewrap
        try:
            count = await self._store.rewrap_batch(version, size, reseal, skip_locked=True)
            if count == 0:  # nothing free: wait for rows briefly locked by live traffic
                count = await self._store.rewrap_batch(version, size, reseal, skip_locked=False)
        except KeyDecryptError as exc:
            raise Internal(f"rewrap stopped: {exc}") from None
        return count

    async def record_refusal(self, caller: str, method: str, detail: str) -> None:
        """Audits a call the authorization policy refused before it reached a use-case."""
        await self._store.record_audit(
            AuditEntry(caller or UNKNOWN_CALLER, method, "", "", Outcome.DENIED, detail)
        )

    @asynccontextmanager
    async def _audited(self, method: str, user_id: str, provider: str) -> AsyncIterator[_Note]:
        """Audits the call when it ends, however it ends.

        The row names the provider only when the call found or stored a key under it
        (`note.stored`: PutKey stored it, DeleteKey deleted it, MarkUsed marked it, Decrypt
        found it); else the provider is blank, and not quoted in the detail either. A name a
        key is stored under is one gateway accepted for the user (its known providers);
        anything else is what a caller sent, which can be a key pasted into the provider
        field (`/wallet remove <key>`), and an ElevenLabs key (`sk_` and 48 hex) fits the
        provider pattern. Decrypt's row is written by the store with its read (`note.written`),
        under the same rule: the provider when the key was there, else blank with the detail
        unquoted; a correction changes only its outcome and detail.
        """
        note = _Note()
        user = _valid_or_blank(user_id, check_user_id)
        prov = _valid_or_blank(provider, check_provider)

        async def audit(outcome: Outcome, detail: str) -> None:
            named, said = prov, detail
            if not note.stored:  # (a row the store wrote already holds its provider)
                named = ""
                if provider:
                    said = _unquoted(detail, provider)
            await self._audit(method, user, named, outcome, said, written=note.written)

        try:
            yield note
        except TzurotError as exc:
            await audit(
                Outcome.NOT_FOUND if isinstance(exc, NotFound) else Outcome.ERROR, exc.message
            )
            raise
        except (asyncio.CancelledError, GeneratorExit):
            await audit(Outcome.ERROR, f"cancelled ({note.detail})")
            raise
        except Exception as exc:
            await audit(Outcome.ERROR, type(exc).__name__)
            raise
        await audit(note.outcome, note.detail)

    async def _audit(
        self,
        method: str,
        user_id: str,
        provider: str,
        outcome: Outcome,
        detail: str,
        *,
        written: tuple[int, Outcome, str] | None = None,
    ) -> None:
        if written is not None:
            audit_id, *said = written
            if said != [outcome, detail]:
                await self._store.correct_audit(audit_id, outcome, detail)
            return
        caller = self._caller() or UNKNOWN_CALLER
        await self._store.record_audit(
            AuditEntry(caller, method, user_id, provider, outcome, detail)
        )
