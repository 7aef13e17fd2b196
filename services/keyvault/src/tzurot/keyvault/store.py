"""Keyvault's Postgres store (schema `vault`): sealed keys and the audit log.

Each method is one short transaction. Rewrap locks a batch of stale rows with
`FOR UPDATE SKIP LOCKED`, so several rewrappers and live traffic can run side by side and
an interrupted run simply resumes with the rows still stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.db.engine import autocommit
from tzurot.db.warm import rolled_back
from tzurot.keyvault.crypto import SealedKey
from tzurot.keyvault.domain import AuditEntry, KeyRecord, KeyUse, Outcome
from tzurot.keyvault.ports import Resealer
from tzurot.keyvault.tables import api_keys, audit_log

_RECORD_COLUMNS = (
    api_keys.c.user_id,
    api_keys.c.provider,
    api_keys.c.master_key_version,
    api_keys.c.hint,
    api_keys.c.created_at,
    api_keys.c.updated_at,
    api_keys.c.last_used_at,
    api_keys.c.rejected_at,
)


# Decrypt's read and its audit row: one statement, its own transaction, through
# tzurot.db.direct (no BEGIN/COMMIT round trips, no per-call execution machinery). The audit
# row says `found` or `missing` by whether the key is there (`missing` with its own provider:
# blank, as a miss names none); the row is always written.
_AUDITED_SEALED = direct.Statement(
    """WITH sealed AS (
    SELECT master_key_version, nonce, ciphertext FROM vault.api_keys
    WHERE user_id = $1 AND provider = $2
), audit AS (
    INSERT INTO vault.audit_log (caller, method, user_id, provider, outcome, detail)
    SELECT $3, $4, $1,
        CASE WHEN EXISTS (SELECT FROM sealed) THEN $2 ELSE $9 END,
        CASE WHEN EXISTS (SELECT FROM sealed) THEN $5 ELSE $7 END,
        CASE WHEN EXISTS (SELECT FROM sealed) THEN $6 ELSE $8 END
    RETURNING id
)
SELECT audit.id AS audit_id, sealed.master_key_version, sealed.nonce, sealed.ciphertext
FROM audit LEFT JOIN sealed ON true"""
)
_AUDIT_CORRECTED = direct.Statement(
    "UPDATE vault.audit_log SET outcome = $2, detail = $3 WHERE id = $1"
)
_AUDIT = direct.Statement(
    sa.insert(audit_log).values(
        **{
            name: sa.bindparam(name)
            for name in ("caller", "method", "user_id", "provider", "outcome", "detail")
        }
    )
)


def _record(row: sa.Row[*tuple[Any, ...]]) -> KeyRecord:
    return KeyRecord(
        user_id=row.user_id,
        provider=row.provider,
        master_key_version=row.master_key_version,
        hint=row.hint,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_used_at=row.last_used_at,
        rejected_at=row.rejected_at,
    )


def _row_key(user_id: str, provider: str) -> sa.ColumnElement[bool]:
    return sa.and_(api_keys.c.user_id == user_id, api_keys.c.provider == provider)


class PostgresKeyStore:
    """All of keyvault's SQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._auto = autocommit(engine)

    async def put(self, user_id: str, provider: str, sealed: SealedKey, hint: str) -> KeyRecord:
        sealed_values = {
            "master_key_version": sealed.master_key_version,
            "nonce": sealed.nonce,
            "ciphertext": sealed.ciphertext,
            "hint": hint,
        }
        insert_row = insert(api_keys).values(user_id=user_id, provider=provider, **sealed_values)
        stmt = insert_row.on_conflict_do_update(
            index_elements=[api_keys.c.user_id, api_keys.c.provider],
            set_={
                **sealed_values,
                # Later than the record replaced, even were the clock to step back or two
                # writes share a microsecond: a read-back tells them apart (stored_at).
                "updated_at": sa.func.greatest(
                    sa.func.now(), api_keys.c.updated_at + sa.text("interval '1 microsecond'")
                ),
                "last_used_at": None,
                "rejected_at": None,
            },
        ).returning(*_RECORD_COLUMNS)
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt)).one()
        return _record(row)

    async def delete(self, user_id: str, provider: str) -> bool:
        stmt = sa.delete(api_keys).where(_row_key(user_id, provider)).returning(api_keys.c.user_id)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def list_for_user(self, user_id: str) -> list[KeyRecord]:
        stmt = (
            sa.select(*_RECORD_COLUMNS)
            .where(api_keys.c.user_id == user_id)
            .order_by(api_keys.c.provider)
        )
        async with self._engine.connect() as conn:
            return [_record(row) for row in await conn.execute(stmt)]

    async def get_sealed_audited(
        self, found: AuditEntry, missing: AuditEntry
    ) -> tuple[int, SealedKey | None]:
        """The sealed key of (`found.user_id`, `found.provider`), and the id of the audit row
        written with it: `found` when the key is there, else `missing` (its outcome, detail
        and provider; one statement)."""
        args = (
            found.user_id,
            found.provider,
            found.caller,
            found.method,
            found.outcome.value,
            found.detail,
            missing.outcome.value,
            missing.detail,
            missing.provider,
        )
        row = await direct.fetchrow(self._auto, _AUDITED_SEALED, args)
        assert row is not None  # the audit row is always written
        if row["nonce"] is None:
            return row["audit_id"], None
        sealed = SealedKey(row["master_key_version"], bytes(row["nonce"]), bytes(row["ciphertext"]))
        return row["audit_id"], sealed

    async def warm_decrypt(self, user_id: str, provider: str) -> None:
        """Decrypt's statement run and rolled back (warm-up: no audit row is kept)."""
        args = (user_id, provider, "warm-up", "Decrypt", "ok", "", "not_found", "", "")
        await rolled_back(self._engine, _AUDITED_SEALED, args)

    async def correct_audit(self, audit_id: int, outcome: Outcome, detail: str) -> None:
        await direct.fetch(self._auto, _AUDIT_CORRECTED, (audit_id, outcome.value, detail))

    async def mark_used(self, user_id: str, provider: str) -> bool:
        stmt = (
            sa.update(api_keys)
            .where(_row_key(user_id, provider))
            .values(last_used_at=sa.func.now())
            .returning(api_keys.c.user_id)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def record_uses(self, uses: Sequence[KeyUse]) -> int:
        """Applies a batch of uses in one transaction; how many stored keys it touched.

        `last_used_at` only moves forward; a rejection sets `rejected_at` (inactive), and a
        use that worked after the last rejection clears it. Uses of keys that are gone
        (removed since) change nothing, and so do those of a key replaced since it was read
        (`taken_after` earlier than the stored key's `updated_at`): a late refusal of the old
        key leaves the new one active.
        """
        touched = 0
        async with self._engine.begin() as conn:
            for use in sorted(uses, key=lambda u: u.used_at):
                last = sa.func.greatest(
                    sa.func.coalesce(api_keys.c.last_used_at, use.used_at), use.used_at
                )
                values: dict[str, Any] = {"last_used_at": last}
                if use.rejected:
                    values["rejected_at"] = sa.func.greatest(
                        sa.func.coalesce(api_keys.c.rejected_at, use.used_at), use.used_at
                    )
                else:
                    values["rejected_at"] = sa.case(
                        (api_keys.c.rejected_at < use.used_at, None),
                        else_=api_keys.c.rejected_at,
                    )
                where = _row_key(use.user_id, use.provider)
                if use.taken_after is not None:  # only the key that was read, not a newer one
                    where = sa.and_(where, api_keys.c.updated_at <= use.taken_after)
                stmt = (
                    sa.update(api_keys).where(where).values(**values).returning(api_keys.c.user_id)
                )
                touched += (await conn.execute(stmt)).first() is not None
        return touched

    async def count_wrapped_below(self, version: int) -> int:
        stmt = (
            sa.select(sa.func.count())
            .select_from(api_keys)
            .where(api_keys.c.master_key_version < version)
        )
        async with self._engine.connect() as conn:
            return int(await conn.scalar(stmt) or 0)

    async def count_keys(self) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(api_keys)) or 0)

    async def rewrap_batch(
        self, version: int, limit: int, reseal: Resealer, *, skip_locked: bool
    ) -> int:
        select = (
            sa.select(
                api_keys.c.user_id,
                api_keys.c.provider,
                api_keys.c.master_key_version,
                api_keys.c.nonce,
                api_keys.c.ciphertext,
            )
            .where(api_keys.c.master_key_version < version)
            .order_by(api_keys.c.user_id, api_keys.c.provider)
            .limit(limit)
            .with_for_update(skip_locked=skip_locked)
        )
        update = (
            sa.update(api_keys)
            .where(
                api_keys.c.user_id == sa.bindparam("b_user_id"),
                api_keys.c.provider == sa.bindparam("b_provider"),
            )
            .values(
                master_key_version=sa.bindparam("b_version"),
                nonce=sa.bindparam("b_nonce"),
                ciphertext=sa.bindparam("b_ciphertext"),
            )
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(select)).all()
            if not rows:
                return 0
            params = []
            for row in rows:
                old = SealedKey(row.master_key_version, bytes(row.nonce), bytes(row.ciphertext))
                new = reseal(row.user_id, row.provider, old)
                params.append(
                    {
                        "b_user_id": row.user_id,
                        "b_provider": row.provider,
                        "b_version": new.master_key_version,
                        "b_nonce": new.nonce,
                        "b_ciphertext": new.ciphertext,
                    }
                )
            await conn.execute(update, params)
        return len(rows)

    async def record_audit(self, entry: AuditEntry) -> None:
        params = {
            "caller": entry.caller,
            "method": entry.method,
            "user_id": entry.user_id,
            "provider": entry.provider,
            "outcome": entry.outcome.value,
            "detail": entry.detail,
        }
        await direct.fetch(self._auto, _AUDIT, params)  # one statement: its own transaction
