"""Webhook routes as strict as Discord's (managing them: webhook_admin.py).

- Executing validates `username` by Create Webhook's rules (non-rendering characters are dropped
  before the checks), `avatar_url` (a well formed http(s) URL), content (1..2000 characters),
  embeds (embeds.py), `allowed_mentions`, and needs `thread_id` in a forum or a media channel
  (220001). The pings Discord would send are recorded, and the link previews it would add
  (none with the SUPPRESS_EMBEDS flag, none for `<url>`).
  Into an archived thread it unarchives the thread, unless the thread is locked too (50083);
  a locked thread that is active takes it (rules.py `closed_thread_error`: what Discord does
  there with a webhook is not documented).
- Reading, editing or deleting a message through a webhook: only one that webhook posted
  (else 10008), needing no permission in the channel; one in a thread only with its
  `thread_id` (else 10008). No edit in an archived thread (50083); deleting is allowed there.
  An edit may not leave the message empty (50006, interactions.py `edit_empties`).
- Files, sent or added by an edit, follow uploads.py: each within the guild's limit (413,
  40005; no total per request is documented for these routes), at most 10 attachments a
  message (50035), each `description` at most 1024 characters (50035). An edit's embeds
  follow embeds.py.
- Rate limits: per webhook (5 per 2 s, every route) and per channel for new messages (30 a
  minute), answered with 429, `retry_after` and `X-RateLimit-*` headers (and `Via`, as
  Discord's edge sends it; discord.py retries only then).
"""

from __future__ import annotations

from aiohttp import web

from tzurot.testing.fake_discord.embeds import embeds_error
from tzurot.testing.fake_discord.interactions import EMPTY_MESSAGE, edit_empties
from tzurot.testing.fake_discord.mentions import allowed_mentions_error
from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.rules import (
    CONTENT_LIMIT,
    CONTENT_TOO_LONG,
    SUPPRESS_EMBEDS,
    THREAD_ONLY_TYPES,
    THREAD_TYPES,
    avatar_url_error,
    error,
    link_previews,
    username_error,
)
from tzurot.testing.fake_discord.uploads import attachments_error, description_error
from tzurot.testing.fake_discord.voice_messages import content_type_of, voice_message_error
from tzurot.testing.fake_discord.webhook_admin import WebhookAdmin
from tzurot.testing.fake_discord.wire import (
    Json,
    Upload,
    iso,
    json_response,
    not_found,
    read_body_files,
    record_uploads,
)

THREAD_NAME_LIMIT = 100
"""A thread's name, as any channel's, is 1-100 characters (Channel Object: `name`)."""


class Webhooks(WebhookAdmin):
    def _hook(self, request: web.Request) -> Json | None:
        hook = self.webhooks.get(int(request.match_info["hook"]))
        if hook is None or hook["token"] != request.match_info["token"]:
            return None
        return hook

    def _hook_refused(self, request: web.Request) -> web.Response:
        """Why a webhook-token route found no webhook: none of that id (404, 10015), or one
        whose token is not this (401, 50027 Invalid Webhook Token, as Discord answers)."""
        if int(request.match_info["hook"]) in self.webhooks:
            return json_response({"code": 50027, "message": "Invalid Webhook Token"}, status=401)
        return not_found(10015, "Unknown Webhook")

    # ---- executing ----

    async def _execute_webhook(self, request: web.Request) -> web.Response:  # noqa: PLR0911, PLR0912  # one refusal per Discord rule
        route = "execute_webhook"
        token = request.match_info["token"]
        if token in self.interactions:
            return await self._followup(request, self.interactions[token])
        fault = self._fault(route, request)
        if fault is not None:
            return fault
        hook = self._hook(request)
        if hook is None:
            return self._hook_refused(request)
        body, files = await read_body_files(request, self.uploads)
        place = self._place(route, hook, request.query.get("thread_id"), body)
        if isinstance(place, web.Response):
            return place
        channel, thread_name = place
        refused = self._upload_refused(route, channel, request, files)
        if refused is not None:
            return refused
        username = str(body.get("username") or hook["name"])
        content = str(body.get("content") or "")
        problem = (
            username_error(username)
            or avatar_url_error(body.get("avatar_url"))
            or allowed_mentions_error(body.get("allowed_mentions"))
        )
        if problem is None and len(content) > CONTENT_LIMIT:
            problem = CONTENT_TOO_LONG
        if problem is None:
            problem = embeds_error(body) or description_error(body)
        if problem is None and not content and not body.get("embeds") and not files:
            problem = error(50006, "Cannot send an empty message")
        if problem is None:
            problem = voice_message_error(body, files, webhook=True)
        if problem is not None:
            return self.refuse(route, 400, problem)
        limited = self._limited(
            route,
            (f"webhook:{hook['id']}", self.webhook_rate),
            (f"channel-webhooks:{hook['channel_id']}", self.channel_webhook_rate),
        )
        if limited is not None:
            return limited
        if thread_name:  # the forum's new post, started by the webhook's message
            guild = self.guilds[int(channel["guild_id"])]
            channel = self.add_thread(guild, channel, thread_name)
            channel["owner_id"] = hook["id"]
        author = {
            "id": hook["id"],
            "username": username,
            "discriminator": "0000",
            "avatar": None,
            "bot": True,
        }
        data = self._message_json(channel, author, content)
        data["webhook_id"] = hook["id"]
        if hook.get("application_id"):
            data["application_id"] = hook["application_id"]
        data["flags"] = int(body.get("flags") or 0) & SUPPRESS_EMBEDS
        data["embeds"] = (body.get("embeds") or []) + link_previews(content, data["flags"])
        data["attachments"] = self._attachments_after(channel, [], body, files)
        posted = self._store(data, avatar_url=body.get("avatar_url"))
        record_uploads(request)
        posted.allowed_mentions.append(body.get("allowed_mentions"))
        self._record_pings(posted.id, channel, content, body.get("allowed_mentions"), webhook=True)
        await self.unarchive_on_post(channel)
        await self.dispatch_message(posted)
        headers = self._rate_headers(f"webhook:{hook['id']}")
        if request.query.get("wait") in {"true", "True", "1"}:
            return json_response(posted.data, headers=headers)
        return web.Response(status=204, headers=headers)

    def _place(
        self, route: str, hook: Json, thread_id: str | None, body: Json
    ) -> tuple[Json, str] | web.Response:
        """Where an Execute Webhook posts (the webhook's channel, or the thread `thread_id`
        names) and the name of the forum post it creates (`thread_name`), or its refusal.
        resources/webhook: a forum or media channel's webhook names its post (`thread_id`)
        or creates one (`thread_name`), not both (220002, none: 220001); `thread_name`
        elsewhere is 220003."""
        channel = self.channels[int(hook["channel_id"])]
        thread_name = str(body.get("thread_name") or "")
        forum = channel.get("type") in THREAD_ONLY_TYPES
        problem: Json | None = None
        if thread_name and thread_id and forum:
            problem = error(
                220002,
                "Webhooks posted to forum channels cannot have both a thread_name and thread_id",
            )
        elif thread_name and not forum:
            problem = error(220003, "Webhooks can only create threads in forum channels")
        elif forum and not thread_name and not thread_id:
            problem = error(
                220001, "Webhooks posted to forum channels must have a thread_name or thread_id"
            )
        elif len(thread_name) > THREAD_NAME_LIMIT:
            problem = error(
                50035,
                "Invalid Form Body",
                thread_name={
                    "_errors": [
                        {
                            "code": "BASE_TYPE_BAD_LENGTH",
                            "message": f"Must be between 1 and {THREAD_NAME_LIMIT} in length.",
                        }
                    ]
                },
            )
        if problem is not None:
            return self.refuse(route, 400, problem)
        if thread_id:
            thread = self.channels.get(int(thread_id))
            if thread is None or thread.get("parent_id") != hook["channel_id"]:
                return self.refuse(route, 400, error(10003, "Unknown Channel"))
            refused = self._closed_thread(route, thread, editing=False, webhook=True)
            return (thread, "") if refused is None else refused
        return channel, thread_name

    def _webhook_message(self, request: web.Request) -> Posted | None:
        """The hook's message, found only with the `thread_id` of the thread it is in."""
        if self._hook(request) is None:
            return None
        posted = self.find(int(request.match_info["message"]))
        if posted is None or posted.deleted or posted.webhook_id != int(request.match_info["hook"]):
            return None
        in_thread = self.channels[posted.channel_id].get("type") in THREAD_TYPES
        thread_id = request.query.get("thread_id")
        if in_thread and thread_id != str(posted.channel_id):
            return None
        if not in_thread and thread_id:
            return None
        return posted

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        route = "get_webhook_message"
        hook = self._hook(request)
        if hook is None:
            return self._hook_refused(request)
        posted = self._webhook_message(request)
        if posted is None:  # a read, as the channel's: not recorded as a refusal
            return not_found(10008, "Unknown Message")
        limited = self._limited(route, (f"webhook:{hook['id']}", self.webhook_rate))
        if limited is not None:
            return limited
        return json_response(posted.data, headers=self._rate_headers(f"webhook:{hook['id']}"))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:  # noqa: PLR0911, PLR0912  # one refusal per Discord rule
        route = "edit_webhook_message"
        token = request.match_info["token"]
        if token in self.interactions:
            return await self._edit_original(request, self.interactions[token])
        fault = self._fault(route, request)
        if fault is not None:
            return fault
        hook = self._hook(request)
        if hook is None:
            return self._hook_refused(request)
        posted = self._webhook_message(request)
        if posted is None:
            return self.refuse(route, 404, error(10008, "Unknown Message"))
        body, files = await read_body_files(request, self.uploads)
        channel = self.channels[posted.channel_id]
        refused = self._closed_thread(
            route, channel, editing=True, webhook=True
        ) or self._upload_refused(route, channel, request, files)
        if refused is not None:
            return refused
        attachments = None
        if files or "attachments" in body:
            attachments = self._attachments_after(channel, posted.data["attachments"], body, files)
        problem = allowed_mentions_error(body.get("allowed_mentions"))
        if problem is None and len(body.get("content") or "") > CONTENT_LIMIT:
            problem = CONTENT_TOO_LONG  # with `errors`, as Execute Webhook's (rules.py)
        if problem is None:
            problem = embeds_error(body) or description_error(body)
        if problem is None and attachments is not None:
            problem = attachments_error(attachments)
        after = posted.data["attachments"] if attachments is None else attachments
        if problem is None and edit_empties(posted.data, body, len(after)):
            problem = EMPTY_MESSAGE
        if problem is not None:
            return self.refuse(route, 400, problem)
        limited = self._limited(route, (f"webhook:{hook['id']}", self.webhook_rate))
        if limited is not None:
            return limited
        if "flags" in body:  # only SUPPRESS_EMBEDS can be changed on an edit
            posted.data["flags"] = int(body["flags"] or 0) & SUPPRESS_EMBEDS
        if "content" in body or "flags" in body:
            kept = [e for e in posted.data.get("embeds") or [] if e.get("type") != "link"]
            content = (body["content"] or "") if "content" in body else posted.content
            posted.data["embeds"] = kept + link_previews(content, posted.data["flags"])
        if "content" in body:
            posted.data["content"] = body["content"] or ""
            posted.edits.append(posted.data["content"])
            posted.data["edited_timestamp"] = iso()
            posted.allowed_mentions.append(body.get("allowed_mentions"))
            self._record_pings(
                posted.id, channel, posted.content, body.get("allowed_mentions"), webhook=True
            )
        if attachments is not None:
            posted.data["attachments"] = attachments
            posted.data["edited_timestamp"] = iso()
        record_uploads(request)
        return json_response(posted.data, headers=self._rate_headers(f"webhook:{hook['id']}"))

    def _attachments_after(
        self, channel: Json, existing: list[Json], body: Json, files: list[Upload]
    ) -> list[Json]:
        """A message's attachments after a send or an edit, by Discord's rule: with an
        `attachments` array, exactly those (kept ones by id, new ones by their `files[n]`
        index); without one, the existing ones and every new file appended."""
        by_field = {f.field: f for f in files}

        def new(upload: Upload, meta: Json) -> Json:
            filename = str(meta.get("filename") or upload.filename)
            # Discord infers the type from the name when the client sent none (discord.py).
            kind = upload.content_type
            if kind in ("", "application/octet-stream"):
                kind = content_type_of(filename)
            made = self.upload(channel, filename, upload.data, kind)
            if meta.get("description"):
                made["description"] = str(meta["description"])
            return made

        if "attachments" not in body:
            return [*existing, *(new(f, {}) for f in files)]
        kept = {str(a["id"]): a for a in existing}
        after: list[Json] = []
        for meta in body.get("attachments") or []:
            ref = meta.get("id")
            upload = by_field.get(f"files[{ref}]")
            if upload is not None and str(ref) not in kept:
                after.append(new(upload, meta))
            elif str(ref) in kept:
                after.append(kept[str(ref)])
        return after

    async def _delete_hook_message(self, request: web.Request) -> web.Response:
        route = "delete_webhook_message"
        hook = self._hook(request)
        if hook is None:
            return self._hook_refused(request)
        posted = self._webhook_message(request)
        if posted is None:
            return self.refuse(route, 404, error(10008, "Unknown Message"))
        limited = self._limited(route, (f"webhook:{hook['id']}", self.webhook_rate))
        if limited is not None:
            return limited
        posted.deleted = True
        return web.Response(status=204, headers=self._rate_headers(f"webhook:{hook['id']}"))
