"""The gateway websocket: HELLO, IDENTIFY with shard routing, READY, GUILD_CREATE, dispatches."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

from tzurot.testing.fake_discord.intents import GUILDS, MESSAGE_CONTENT, as_received
from tzurot.testing.fake_discord.records import Session
from tzurot.testing.fake_discord.rules import Permission
from tzurot.testing.fake_discord.state import DiscordState
from tzurot.testing.fake_discord.wire import Json

IDENTIFY_WINDOW_SECONDS = 5.0
HEARTBEAT_GRACE = 1.5
"""A heartbeat is due within `heartbeat_interval` of the last (or of HELLO: the first comes
after `heartbeat_interval * jitter`, jitter below 1); "There is already tolerance in the
heartbeat_interval" (events/gateway.mdx L154), how much is not documented: the fake waits half
an interval more."""
HEARTBEAT_MISSED = 4000
"""The close code for a missed heartbeat. events/gateway.mdx L146: "If your app fails to send
a heartbeat event in time, your connection will be closed and you will be forced to Resume";
it names no code, so the fake uses 4000 Unknown error, which opcodes-and-status-codes.mdx
(L38) marks as one to reconnect after. The session stays resumable."""
_CLOSING = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


class Gateway(DiscordState):
    """Sessions of bot processes and the events sent to them.

    Discord's rules: IDENTIFY at most once per `identify_window` s per bucket
    (`shard_id % max_concurrency`), else op 9 Invalid Session; the message-content intent
    without approval closes with 4014; RESUME with a known session id replays the events
    sent after the given sequence, then RESUMED (an unknown one gets op 9). A session receives
    only the events of the intents it identified with, and message content only by the
    MESSAGE_CONTENT intent's rule (intents.py). A connection whose heartbeat is late (more
    than `HEARTBEAT_GRACE` intervals after the last, or after HELLO) is closed with 4000 and
    may RESUME."""

    # ---- gateway ----

    async def dispatch(self, event: str, data: Json, *, guild_id: int | None = None) -> None:
        """Sends a DISPATCH to the session owning `guild_id`'s shard (all if None), as its
        intents let it see it (none of an intent it did not ask for); a session that is
        disconnected keeps it for its RESUME."""
        for state in list(self.resumable.values()):
            shard_id, count = state.shard
            if guild_id is not None and (guild_id >> 22) % count != shard_id:
                continue
            shown = as_received(event, data, state.intents, str(self.bot_user["id"]))
            if shown is None:
                continue
            live = next((s for s in self.sessions if s.session_id == state.session_id), None)
            if live is not None and (not live.identified or live.ws.closed):
                live = None
            frame = self._frame(state, shown, event)
            if live is not None:
                await live.ws.send_str(json.dumps(frame))

    def _frame(self, state: Session, data: Any, event: str | None) -> Json:
        state.seq += 1
        frame: Json = {"op": 0, "d": data, "s": state.seq, "t": event}
        state.sent.append(frame)
        del state.sent[: -self.resume_buffer]
        return frame

    async def _send(self, session: Session, op: int, data: Any, event: str | None = None) -> None:
        if op == 0:
            state = self.resumable.get(session.session_id, session)
            frame = self._frame(state, data, event)
        else:
            frame = {"op": op, "d": data, "s": None, "t": event}
        await session.ws.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = Session(ws)
        self.sessions.append(session)
        loop = asyncio.get_running_loop()
        try:
            await self._send(session, 10, {"heartbeat_interval": self.heartbeat_interval_ms})
            beat = loop.time()
            while not ws.closed:
                wait = beat + self.heartbeat_interval_ms * HEARTBEAT_GRACE / 1000 - loop.time()
                try:
                    msg = await ws.receive(timeout=max(wait, 0.001))  # 0 would mean no timeout
                except TimeoutError:
                    self.heartbeat_timeouts.append(session.session_id)
                    await ws.close(code=HEARTBEAT_MISSED, message=b"Heartbeat not received.")
                    break
                if msg.type in _CLOSING:
                    break
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if frame["op"] == 1:
                    beat = loop.time()
                    await self._send(session, 11, None)
                elif frame["op"] == 2:
                    await self._identify(session, frame["d"])
                elif frame["op"] == 6:
                    await self._resume(session, frame["d"])
        finally:
            self.sessions.remove(session)
            self._touch()
        return ws

    def _identify_allowed(self, shard_id: int) -> bool:
        bucket = shard_id % self.max_concurrency
        now = time.monotonic()
        last = self.identified_at.get(bucket)
        if last is not None and now - last < self.identify_window:
            return False
        self.identified_at[bucket] = now
        return True

    async def _identify(self, session: Session, data: Json) -> None:
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        session.shard = (int(shard[0]), int(shard[1]))
        session.intents = int(data.get("intents", 0))
        if session.intents & MESSAGE_CONTENT and not self.message_content_approved:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        if not self._identify_allowed(session.shard[0]):
            self.invalid_sessions.append(session.shard[0])
            await self._send(session, 9, False)
            return
        self.identifies.append((session.shard[0], time.monotonic()))
        mine = [
            g
            for gid, g in self.guilds.items()
            if (gid >> 22) % session.shard[1] == session.shard[0]
        ]
        session.session_id = f"session-{self.snowflake()}"
        self.resumable[session.session_id] = session
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": g["id"], "unavailable": True} for g in mine],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await self._send(session, 0, ready, "READY")
        session.identified = True
        for guild in mine if session.intents & GUILDS else []:
            await self._send(session, 0, self._guild_create(guild), "GUILD_CREATE")
        self._touch()

    def _guild_create(self, guild: Json) -> Json:
        """The guild as GUILD_CREATE shows it to the bot: only the active threads it can view
        (a private one only if it is a member or has Manage Threads; archived ones are not
        synced up front: topics/threads.mdx), each it joined with its own thread member
        (without `id` and `user_id` there)."""
        me = int(self.bot_user["id"])
        threads: list[Json] = []
        for thread in guild["threads"]:
            if not self.bot_permissions(thread) & Permission.VIEW_CHANNEL:
                continue
            if thread["thread_metadata"].get("archived"):
                continue
            shown = dict(thread)
            joined = self.thread_members.get(int(thread["id"]), {}).get(me)
            if joined is not None:
                shown["member"] = {
                    "join_timestamp": joined["join_timestamp"],
                    "flags": joined["flags"],
                }
            threads.append(shown)
        return {**guild, "threads": threads}

    async def _resume(self, session: Session, data: Json) -> None:
        state = self.resumable.get(str(data.get("session_id")))
        if data.get("token") != self.token or state is None:
            await self._send(session, 9, False)
            return
        after = int(data.get("seq") or 0)
        missed = [f for f in state.sent if f["s"] > after]
        if state.sent and after < state.sent[0]["s"] - 1:
            await self._send(session, 9, False)  # too far behind: a new session is needed
            return
        session.session_id, session.shard = state.session_id, state.shard
        session.identified, session.seq, session.sent = True, state.seq, state.sent
        session.intents = state.intents
        self.resumable[state.session_id] = session
        for frame in missed:
            await session.ws.send_str(json.dumps(frame))
        self.resumes.append((state.session_id, len(missed)))
        await self._send(session, 0, {}, "RESUMED")
        self._touch()
