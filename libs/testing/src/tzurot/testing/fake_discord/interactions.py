"""Interaction responses as Discord takes them: the initial callback within 3 s (else the
token is invalid: 404 10062), acknowledged once (40060), follow-ups and edits of the original
only after a response (else 10015 Unknown Webhook) and within the token's 15 minutes, and
files no larger than the interaction's `attachment_size_limit` (413, 40005)."""

from __future__ import annotations

import time

from aiohttp import web

from tzurot.testing.fake_discord.records import FakeInteraction
from tzurot.testing.fake_discord.rules import INTERACTION_TOKEN_SECONDS, error
from tzurot.testing.fake_discord.users import Users
from tzurot.testing.fake_discord.wire import Json, json_response, read_body


class Interactions(Users):
    async def _interaction_callback(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        route = "interaction_callback"
        if record is None or str(record.id) != request.match_info["id"]:
            return self.refuse(route, 404, error(10062, "Unknown interaction"))
        if time.monotonic() - record.created > self.interaction_deadline:
            return self.refuse(route, 404, error(10062, "Unknown interaction"))
        if record.acknowledged:
            return self.refuse(
                route, 400, error(40060, "Interaction has already been acknowledged.")
            )
        body, files = await read_body(request, self.uploads)
        refused = self._too_large(route, record, files)
        if refused is not None:
            return refused
        record.files.extend(files)
        record.responses.append(body)
        answer: Json = {"interaction": {"id": str(record.id), "type": record.data["type"]}}
        if body.get("type") in {4, 5}:
            message = self._interaction_message(record, body.get("data") or {})
            answer["resource"] = {"type": body["type"], "message": message}
        return json_response(answer)

    def _usable(self, route: str, record: FakeInteraction) -> web.Response | None:
        """Follow-ups and edits need an initial response and a token younger than 15 min."""
        expired = time.monotonic() - record.created > INTERACTION_TOKEN_SECONDS
        if expired or not record.acknowledged:
            return self.refuse(route, 404, error(10015, "Unknown Webhook"))
        return None

    def _too_large(
        self, route: str, record: FakeInteraction, files: list[bytes]
    ) -> web.Response | None:
        if any(len(f) > record.attachment_size_limit for f in files):
            return self.refuse(route, 413, error(40005, "Request entity too large"))
        return None

    async def _followup(self, request: web.Request, record: FakeInteraction) -> web.Response:
        route = "interaction_followup"
        refused = self._usable(route, record)
        if refused is not None:
            return refused
        body, files = await read_body(request, self.uploads)
        refused = self._too_large(route, record, files)
        if refused is not None:
            return refused
        last = record.responses[-1]
        if last.get("type") == 5 and not any(
            r.get("type") in {"edit", "followup"} for r in record.responses
        ):
            record.deprecated_followups += 1
        record.files.extend(files)
        record.responses.append({"type": "followup", "data": body})
        return json_response(self._interaction_message(record, body))

    async def _edit_original(self, request: web.Request, record: FakeInteraction) -> web.Response:
        route = "interaction_edit"
        refused = self._usable(route, record)
        if refused is not None:
            return refused
        body, files = await read_body(request, self.uploads)
        refused = self._too_large(route, record, files)
        if refused is not None:
            return refused
        record.files.extend(files)
        record.responses.append({"type": "edit", "data": body})
        return json_response(self._interaction_message(record, body))

    def _interaction_message(self, record: FakeInteraction, body: Json) -> Json:
        channel = self.channels[int(record.data["channel_id"])]
        data = self._message_json(channel, self.bot_user, str(body.get("content") or ""))
        data["embeds"] = body.get("embeds") or []
        data["flags"] = body.get("flags", 0)
        data["webhook_id"] = str(self.application_id)
        data["application_id"] = str(self.application_id)
        data["interaction_metadata"] = {
            "id": str(record.id),
            "type": record.data["type"],
            "user": record.data["member"]["user"],
        }
        return data
