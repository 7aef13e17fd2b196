"""Release notes and announcements to the channels that subscribed.

A subscription remembers the release the channel is current with (the running one when it
subscribed). When a gateway starts with a newer release, `announce_release` moves every
subscription behind it to the new version and queues one notice per channel, in one
transaction: the UPDATE's row locks make a second replica starting at the same moment see
them current already, and the notice's dedup key (release:<version>:<channel>) makes the
queueing once-only even so. The bot posts notices from its event stream (events.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert

from tzurot.gateway import changelog
from tzurot.gateway import group_tables as g
from tzurot.gateway.changelog import Release
from tzurot.gateway.domain import Location, User
from tzurot.gateway.group_store import GroupStore, location_values
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied

log = structlog.get_logger(__name__)

RELEASE_NOTICE = "release"
"""A release note's `notice_kind`: its row is kept for good (outbox_retention.py), for its
dedup key."""


@dataclass(frozen=True)
class RenderedRelease:
    release: Release
    discord_text: str
    url: str


class Notifications:
    def __init__(self, store: GroupStore, releases: list[Release], *, changelog_url: str) -> None:
        self._store = store
        self._engine = store.engine
        self._releases = releases
        self._url = changelog_url

    @property
    def current(self) -> Release | None:
        return changelog.latest(self._releases)

    def notes(self, version: str = "") -> RenderedRelease:
        release = changelog.find(self._releases, version) if version else self.current
        if release is None:
            if not self._releases:
                raise FailedPrecondition("this gateway has no changelog", reason="NO_CHANGELOG")
            raise NotFound(f"no release {version!r} in the changelog", reason="RELEASE_NOT_FOUND")
        return RenderedRelease(
            release, changelog.render(release, full_url=self._url), release.url or self._url
        )

    async def subscribe(self, user: User, where: Location) -> str:
        """The channel gets the notes of every release after the running one."""
        conversation = _conversation(where)
        version = self.current.version if self.current else ""
        stmt = insert(g.notification_subscriptions).values(
            conversation_id=conversation,
            subscribed_by_user_id=user.id,
            version=version,
            **_place(where),
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                stmt.on_conflict_do_nothing(
                    index_elements=[g.notification_subscriptions.c.conversation_id]
                )
            )
        log.info("notifications.subscribed", conversation=conversation)
        return version

    async def unsubscribe(self, where: Location) -> None:
        conversation = _conversation(where)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(g.notification_subscriptions).where(
                    g.notification_subscriptions.c.conversation_id == conversation
                )
            )
        if not result.rowcount:
            raise NotFound("this channel is not subscribed", reason="NOT_SUBSCRIBED")

    async def announce_release(self) -> int:
        """Queues the running release's notes for every subscribed channel behind it, once."""
        release = self.current
        if release is None:
            return 0
        text = changelog.render(release, full_url=self._url)
        s = g.notification_subscriptions.c
        async with self._engine.begin() as conn:
            behind = (
                await conn.execute(
                    sa.update(g.notification_subscriptions)
                    .where(s.version != release.version)
                    .values(version=release.version)
                    .returning(s.guild_id, s.channel_id, s.thread_id, s.conversation_id)
                )
            ).all()
            queued = 0
            for row in behind:
                m = row._mapping
                added = await self._store.add_event(
                    {
                        "guild_id": m["guild_id"],
                        "channel_id": m["channel_id"],
                        "thread_id": m["thread_id"],
                        "kind": "notice",
                        "notice_kind": RELEASE_NOTICE,
                        "text": text,
                        "dedup_key": f"release:{release.version}:{m['conversation_id']}",
                    },
                    conn,
                )
                queued += added is not None
        if queued:
            log.info("notifications.release_queued", version=release.version, channels=queued)
        return queued

    async def announce(self, superuser: bool, text: str) -> int:
        if not superuser:
            raise PermissionDenied("only superusers may announce", reason="SUPERUSER_REQUIRED")
        text = text.strip()
        if not text:
            raise InvalidArgument("text", "the announcement is empty")
        if len(text) > changelog.DISCORD_MESSAGE_LIMIT:
            raise InvalidArgument(
                "text",
                f"the announcement is {len(text)} characters; Discord's limit is "
                f"{changelog.DISCORD_MESSAGE_LIMIT}",
            )
        batch = uuid.uuid4().hex
        s = g.notification_subscriptions.c
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(s.guild_id, s.channel_id, s.thread_id, s.conversation_id)
                )
            ).all()
            for row in rows:
                m = row._mapping
                await self._store.add_event(
                    {
                        "guild_id": m["guild_id"],
                        "channel_id": m["channel_id"],
                        "thread_id": m["thread_id"],
                        "kind": "notice",
                        "notice_kind": "announcement",
                        "text": text,
                        "dedup_key": f"announce:{batch}:{m['conversation_id']}",
                    },
                    conn,
                )
        log.info("notifications.announced", channels=len(rows))
        return len(rows)


def _conversation(where: Location) -> str:
    conversation = where.conversation_id
    if not conversation.strip():
        raise InvalidArgument("location.channel_id", "location.channel_id is required")
    return conversation


def _place(where: Location) -> dict[str, str]:
    values = location_values(where)
    return {k: values[k] for k in ("guild_id", "channel_id", "thread_id")}
