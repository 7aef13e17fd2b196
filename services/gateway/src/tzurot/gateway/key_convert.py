"""Wallet keys: keyvault's records and key uses, gateway's WalletKey, and inference's verdict on
a key."""

from __future__ import annotations

from datetime import UTC

from tzurot.gateway import domain as d
from tzurot.gateway.key_uses import taken_after
from tzurot.gateway.message_convert import timestamp
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import keyvault_pb2 as kv


def wallet_key(k: d.WalletKey) -> gw.WalletKey:
    """A key `set` just stored (never one for a provider that takes no key: `set` refuses
    those); `listed_key` for `list`'s."""
    return gw.WalletKey(
        provider=k.provider,
        active=k.active,
        created_at=timestamp(k.created_at),
        last_used_at=timestamp(k.last_used_at),
        hint=k.hint,
    )


def listed_key(k: d.ListedKey) -> gw.WalletKey:
    """A key as `Wallet.list` gives it, flagged when inference says its provider takes none."""
    converted = wallet_key(k)
    converted.takes_no_key = k.takes_no_key
    return converted


def key_restriction(r: d.KeyRestriction | None) -> common.KeyRestriction | None:
    return None if r is None else common.KeyRestriction(missing_permissions=r.missing_permissions)


def key_check(reply: inf.ValidateKeyResponse) -> d.KeyCheck:
    """Inference's verdict on a key: what it sees and, when present, its restriction."""
    restriction = (
        d.KeyRestriction(tuple(reply.restriction.missing_permissions))
        if reply.HasField("restriction")
        else None
    )
    return d.KeyCheck(
        models=reply.model_count,
        restriction=restriction,
        unchecked=reply.unchecked,
        billed_requests=reply.billed_requests,
    )


def key_use(use: d.KeyUse) -> kv.KeyUse:
    return kv.KeyUse(
        user_id=use.user_id,
        provider=use.provider,
        used_at=timestamp(use.used_at),
        rejected=use.rejected,
        # Only the key read at or after it, never one the user stored since (unset: any).
        taken_after=timestamp(taken_after(use)),
    )


def key_record(rec: kv.KeyRecord) -> d.WalletKey:
    return d.WalletKey(
        provider=rec.provider,
        created_at=rec.created_at.ToDatetime(tzinfo=UTC) if rec.HasField("created_at") else None,
        last_used_at=rec.last_used_at.ToDatetime(tzinfo=UTC)
        if rec.HasField("last_used_at")
        else None,
        hint=rec.hint,
        rejected_at=rec.rejected_at.ToDatetime(tzinfo=UTC) if rec.HasField("rejected_at") else None,
        stored_at=rec.stored_at.ToDatetime(tzinfo=UTC) if rec.HasField("stored_at") else None,
    )
