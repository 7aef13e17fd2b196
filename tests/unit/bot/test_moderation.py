from __future__ import annotations

import grpc

from tzurot.bot.moderation import DenyNotices
from tzurot.runtime.errors import TzurotError


def _err(reason: str) -> TzurotError:
    return TzurotError("no", reason=reason, code=grpc.StatusCode.PERMISSION_DENIED)


def test_a_mute_is_never_told_and_a_block_once_per_cooldown() -> None:
    now = [0.0]
    notices = DenyNotices(60, clock=lambda: now[0])
    assert not notices.should_reply(_err("MUTED"), 1)
    assert notices.should_reply(_err("DENYLISTED"), 1)
    assert not notices.should_reply(_err("DENYLISTED"), 1)
    assert notices.should_reply(_err("DENYLISTED"), 2)  # per user
    now[0] = 61
    assert notices.should_reply(_err("DENYLISTED"), 1)
    assert notices.should_reply(_err("RATE_LIMITED"), 1)  # other refusals are always told
