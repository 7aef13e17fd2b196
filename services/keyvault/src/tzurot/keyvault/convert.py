"""Proto <-> domain mappings for KeyVaultService."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.keyvault.domain import KeyRecord, KeyUse, RewrapProgress
from tzurot.runtime.timestamps import to_timestamp
from tzurot.v1 import keyvault_pb2 as kv


def timestamp(value: datetime) -> Timestamp:
    return to_timestamp(value)


def key_record(record: KeyRecord) -> kv.KeyRecord:
    message = kv.KeyRecord(
        user_id=record.user_id,
        provider=record.provider,
        master_key_version=record.master_key_version,
        hint=record.hint,
        created_at=timestamp(record.created_at),
        # Each PutKey sets updated_at (store.put); nothing else writes it: the store time.
        stored_at=timestamp(record.updated_at),
    )
    if record.last_used_at is not None:
        message.last_used_at.CopyFrom(timestamp(record.last_used_at))
    if record.rejected_at is not None:
        message.rejected_at.CopyFrom(timestamp(record.rejected_at))
    return message


def key_uses(request: kv.MarkUsedRequest, now: datetime) -> list[KeyUse]:
    """The batch in `request.uses`; a use without a time happened `now`; one without
    `taken_after` (an older gateway) is of whatever key is stored."""
    return [
        KeyUse(
            user_id=use.user_id,
            provider=use.provider,
            used_at=use.used_at.ToDatetime(tzinfo=UTC) if use.HasField("used_at") else now,
            rejected=use.rejected,
            taken_after=use.taken_after.ToDatetime(tzinfo=UTC)
            if use.HasField("taken_after")
            else None,
        )
        for use in request.uses
    ]


def rewrap_progress(progress: RewrapProgress) -> kv.RewrapKeysResponse:
    return kv.RewrapKeysResponse(
        master_key_version=progress.master_key_version,
        rewrapped=progress.rewrapped,
        total=progress.total,
    )
