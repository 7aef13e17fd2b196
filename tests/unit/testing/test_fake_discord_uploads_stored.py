"""`uploads` records a file where the fake keeps it, once per message stored: a send
deduplicated by its nonce (Discord answers with the first message, and makes none) adds
nothing, and a webhook message's files are recorded before its MESSAGE_CREATE is dispatched
(a test waiting for the event reads them)."""

from __future__ import annotations

from typing import Any

import pytest

from .test_fake_discord_uploads import discord_http, webhook_path


async def test_a_resend_deduplicated_by_its_nonce_records_its_files_once() -> None:
    async with discord_http() as (http, _, channel):
        create = f"/channels/{channel['id']}/messages"
        body = {"content": "x", "nonce": "n-1", "enforce_nonce": True}
        first_status, first = await http.send("POST", create, body, [3])
        again_status, again = await http.send("POST", create, body, [3])
        assert (first_status, again_status) == (200, 200)
        assert again["id"] == first["id"]  # the first message: no second one was made
        assert len(http.fake.uploads) == 1


async def test_a_webhook_messages_files_are_recorded_before_it_is_dispatched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with discord_http() as (http, _, channel):
        hook = await webhook_path(http, channel)
        fake = http.fake
        seen: list[tuple[int, int]] = []
        dispatch = fake.dispatch_message

        async def spy(posted: Any) -> None:
            seen.append((len(posted.data["attachments"]), len(fake.uploads)))
            await dispatch(posted)

        monkeypatch.setattr(fake, "dispatch_message", spy)
        status, _ = await http.send("POST", hook + "?wait=true", {}, [3])
        assert status == 200
        assert seen == [(1, 1)]
