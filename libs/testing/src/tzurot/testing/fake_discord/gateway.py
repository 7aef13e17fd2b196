"""The gateway websocket: HELLO, IDENTIFY with shard routing, READY, GUILD_CREATE, dispatches."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web

from tzurot.testing.fake_discord.records import Session
from tzurot.testing.fake_discord.state import DiscordState
from tzurot.testing.fake_discord.wire import Json


class Gateway(DiscordState):
    """Sessions of bot processes and the events sent to them."""

    # ---- gateway ----

    async def dispatch(self, event: str, data: Json, *, guild_id: int | None = None) -> None:
        """Sends a DISPATCH to the session owning `guild_id`'s shard (all if None)."""
        for session in list(self.sessions):
            if not session.identified or session.ws.closed:
                continue
            shard_id, count = session.shard
            if guild_id is not None and (guild_id >> 22) % count != shard_id:
                continue
            await self._send(session, 0, data, event)

    async def _send(self, session: Session, op: int, data: Any, event: str | None = None) -> None:
        frame: Json = {"op": op, "d": data, "s": None, "t": event}
        if op == 0:
            session.seq += 1
            frame["s"] = session.seq
        await session.ws.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = Session(ws)
        self.sessions.append(session)
        try:
            await self._send(session, 10, {"heartbeat_interval": self.heartbeat_interval_ms})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if frame["op"] == 1:
                    await self._send(session, 11, None)
                elif frame["op"] == 2:
                    await self._identify(session, frame["d"])
                elif frame["op"] == 6:
                    await self._send(session, 9, False)
        finally:
            self.sessions.remove(session)
            self._touch()
        return ws

    async def _identify(self, session: Session, data: Json) -> None:
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        session.shard = (int(shard[0]), int(shard[1]))
        session.intents = int(data.get("intents", 0))
        mine = [
            g
            for gid, g in self.guilds.items()
            if (gid >> 22) % session.shard[1] == session.shard[0]
        ]
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": g["id"], "unavailable": True} for g in mine],
            "session_id": f"session-{self.snowflake()}",
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await self._send(session, 0, ready, "READY")
        session.identified = True
        for guild in mine:
            await self._send(session, 0, guild, "GUILD_CREATE")
        self._touch()
