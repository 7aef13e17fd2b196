"""The REST routes the bot uses: users, application, commands, channels, webhooks, interactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tzurot.testing.fake_discord.records import FakeInteraction, Posted
from tzurot.testing.fake_discord.rules import API_PREFIX, MAX_WEBHOOKS_PER_CHANNEL, valid_username
from tzurot.testing.fake_discord.users import Users
from tzurot.testing.fake_discord.wire import Json, iso, json_response, not_found, read_json_body


class Rest(Users):
    """The REST handlers, each answering as Discord does."""

    # ---- REST ----

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path.startswith(API_PREFIX) and not request.path.startswith(
            f"{API_PREFIX}/interactions/"
        ):
            auth = request.headers.get("Authorization", "")
            webhook_call = request.path.startswith(f"{API_PREFIX}/webhooks/")
            if not webhook_call and auth != f"Bot {self.token}":
                return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        self.requests.append((request.method, request.path))
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            self._touch()

    def _fault(self, route: str) -> web.Response | None:
        queue = self.faults.get(route)
        if queue:
            status, body = queue.pop(0)
            return json_response(body, status=status)
        return None

    async def _gateway_bot(self, _: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 16,
                },
            }
        )

    async def _me(self, _: web.Request) -> web.Response:
        return json_response(self.bot_user)

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            return not_found(10013, "Unknown User")
        return json_response(user)

    async def _application(self, _: web.Request) -> web.Response:
        return json_response(
            {
                "id": str(self.application_id),
                "name": "Tzurot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.owner,
                "verify_key": "0" * 64,
                "flags": 0,
            }
        )

    async def _sync(self, request: web.Request, scope: str) -> web.Response:
        commands = await request.json()
        stored = [
            {
                "description": "",  # Discord answers "" for context menus
                **c,
                "id": str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": "1",
                "default_member_permissions": c.get("default_member_permissions"),
            }
            for c in commands
        ]
        self.synced_commands[scope] = stored
        return json_response(stored)

    async def _sync_global(self, request: web.Request) -> web.Response:
        return await self._sync(request, "global")

    async def _sync_guild(self, request: web.Request) -> web.Response:
        return await self._sync(request, request.match_info["guild"])

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self.channels.get(int(request.match_info["channel"]))
        if channel is None:
            return not_found(10003, "Unknown Channel")
        return json_response(channel)

    async def _get_message(self, request: web.Request) -> web.Response:
        posted = self.find(int(request.match_info["message"]))
        if posted is None or posted.deleted:
            return not_found(10008, "Unknown Message")
        return json_response(posted.data)

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self.channels[int(request.match_info["channel"])]
        body = await read_json_body(request, self.uploads)
        data = self._message_json(channel, self.bot_user, body.get("content") or "")
        data["embeds"] = body.get("embeds") or []
        posted = self._store(data)
        return json_response(posted.data)

    async def _typing(self, request: web.Request) -> web.Response:
        self.typing.append(int(request.match_info["channel"]))
        return web.Response(status=204)

    async def _get_member(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user"]))
        if user is None:
            return not_found(10007, "Unknown Member")
        return json_response(self._member(user))

    async def _list_webhooks(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        hooks = [h for h in self.webhooks.values() if int(h["channel_id"]) == channel_id]
        return json_response(hooks)

    async def _create_webhook(self, request: web.Request) -> web.Response:
        fault = self._fault("create_webhook")
        if fault is not None:
            return fault
        channel_id = int(request.match_info["channel"])
        count = sum(1 for h in self.webhooks.values() if int(h["channel_id"]) == channel_id)
        if count >= MAX_WEBHOOKS_PER_CHANNEL:
            return json_response(
                {"code": 30007, "message": "Maximum number of webhooks reached (15)"}, status=400
            )
        body = await request.json()
        name = str(body["name"])
        if not 1 <= len(name) <= 80 or "clyde" in name.lower() or "discord" in name.lower():
            return json_response(
                {"code": 50035, "message": "Invalid Form Body", "errors": {"name": {}}}, status=400
            )
        return json_response(self._new_webhook(channel_id, name, creator=self.bot_user))

    async def _get_webhook(self, request: web.Request) -> web.Response:
        hook = self.webhooks.get(int(request.match_info["hook"]))
        return json_response(hook) if hook else not_found(10015, "Unknown Webhook")

    async def _delete_webhook(self, request: web.Request) -> web.Response:
        self.webhooks.pop(int(request.match_info["hook"]), None)
        return web.Response(status=204)

    def _hook(self, request: web.Request) -> Json | None:
        hook = self.webhooks.get(int(request.match_info["hook"]))
        if hook is None or hook["token"] != request.match_info["token"]:
            return None
        return hook

    async def _execute_webhook(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token in self.interactions:
            return await self._followup(request, self.interactions[token])
        fault = self._fault("execute_webhook")
        if fault is not None:
            return fault
        hook = self._hook(request)
        if hook is None:
            return not_found(10015, "Unknown Webhook")
        body = await read_json_body(request, self.uploads)
        username = str(body.get("username") or hook["name"])
        content = str(body.get("content") or "")
        if not valid_username(username) or len(content) > 2000:
            return json_response({"code": 50035, "message": "Invalid Form Body"}, status=400)
        thread_id = request.query.get("thread_id")
        channel = self.channels[int(thread_id) if thread_id else int(hook["channel_id"])]
        author = {
            "id": hook["id"],
            "username": username,
            "discriminator": "0000",
            "avatar": None,
            "bot": True,
        }
        data = self._message_json(channel, author, content)
        data["webhook_id"] = hook["id"]
        data["embeds"] = body.get("embeds") or []
        posted = self._store(data, avatar_url=body.get("avatar_url"))
        await self.dispatch_message(posted)
        if request.query.get("wait") in {"true", "True", "1"}:
            return json_response(posted.data)
        return web.Response(status=204)

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        posted = self._webhook_message(request)
        return json_response(posted.data) if posted else not_found(10008, "Unknown Message")

    def _webhook_message(self, request: web.Request) -> Posted | None:
        if self._hook(request) is None:
            return None
        posted = self.find(int(request.match_info["message"]))
        if posted is None or posted.deleted or posted.webhook_id != int(request.match_info["hook"]):
            return None
        return posted

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token in self.interactions:
            body = await read_json_body(request, self.uploads)
            self.interactions[token].responses.append({"type": "edit", "data": body})
            return json_response(self._interaction_message(self.interactions[token], body))
        if self._hook(request) is None:
            return not_found(10015, "Unknown Webhook")
        posted = self._webhook_message(request)
        if posted is None:
            return not_found(10008, "Unknown Message")
        body = await read_json_body(request, self.uploads)
        if "content" in body:
            if len(body["content"] or "") > 2000:
                return json_response({"code": 50035, "message": "Invalid Form Body"}, status=400)
            posted.data["content"] = body["content"] or ""
            posted.edits.append(posted.data["content"])
            posted.data["edited_timestamp"] = iso()
        return json_response(posted.data)

    async def _delete_hook_message(self, request: web.Request) -> web.Response:
        posted = self._webhook_message(request)
        if posted is None:
            return not_found(10008, "Unknown Message")
        posted.deleted = True
        return web.Response(status=204)

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None or str(record.id) != request.match_info["id"]:
            return not_found(10062, "Unknown interaction")
        if any(r.get("type") in {4, 5, 6, 7, 8, 9} for r in record.responses):
            return json_response(
                {"code": 40060, "message": "Interaction has already been acknowledged."},
                status=400,
            )
        before = len(self.uploads)
        body = await read_json_body(request, self.uploads)
        record.files.extend(self.uploads[before:])
        record.responses.append(body)
        answer: Json = {"interaction": {"id": str(record.id), "type": record.data["type"]}}
        if body.get("type") in {4, 5}:
            message = self._interaction_message(record, body.get("data") or {})
            answer["resource"] = {"type": body["type"], "message": message}
        return json_response(answer)

    async def _followup(self, request: web.Request, record: FakeInteraction) -> web.Response:
        before = len(self.uploads)
        body = await read_json_body(request, self.uploads)
        record.files.extend(self.uploads[before:])
        record.responses.append({"type": "followup", "data": body})
        return json_response(self._interaction_message(record, body))

    def _interaction_message(self, record: FakeInteraction, body: Json) -> Json:
        channel = self.channels[int(record.data["channel_id"])]
        data = self._message_json(channel, self.bot_user, str(body.get("content") or ""))
        data["embeds"] = body.get("embeds") or []
        data["flags"] = body.get("flags", 0)
        data["webhook_id"] = str(self.application_id)
        return data
