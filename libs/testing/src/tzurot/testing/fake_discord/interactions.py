"""Interaction responses as Discord takes them: the initial callback within 3 s (else the
token is invalid: 404 10062), acknowledged once (40060), follow-ups and edits of the original
only after a response (else 10015 Unknown Webhook) and within the token's 15 minutes, rate
limited as a webhook is (rate_limits.py: 5 per 2 s per interaction token, and not bound by
the global limit) and addressed to `/webhooks/{application.id}/{token}`, and files no larger
than the interaction's `attachment_size_limit` (413, 40005). The callback's type must suit
the interaction (`callback_types`; 400 50035 at `type`), and a deferral may carry no flag but
EPHEMERAL.

What a response holds is checked as Discord checks it (400, 50035 Invalid Form Body with an
`errors` tree naming the field, `data.…` in a callback), from discord-api-docs
interactions/receiving-and-responding ("Interaction Callback Data Structure": messages,
autocomplete with "max of 25 choices", a modal as modals.py checks it, its text inputs
included), interactions/application-commands (a choice's `name` 1-100 characters, not only
whitespace; a string `value` at most 100, an empty one taken, discord-jda/JDA#3084) and
resources/message "Create Message" (`content` up to 2000 characters, embeds within
embeds.py's limits; at least one of `content`, `embeds`, `sticker_ids`, `components`, files or
`poll`, else 400 50006 Cannot send an empty message).
Follow-ups and edits of the original are Execute and Edit Webhook Message, so the same message
rules, the fields at the top level; an edit of the original may not leave it empty
(`edit_empties`, as for any webhook message), and Edit Followup Message finds only a follow-up
that token sent (else 404 10008 Unknown Message, as Edit Webhook Message answers).
"""

from __future__ import annotations

import time

from aiohttp import web

from tzurot.testing.fake_discord.command_rules import CHOICE_LIMIT, MAX_CHOICES, FormErrors, Path
from tzurot.testing.fake_discord.embeds import embeds_errors
from tzurot.testing.fake_discord.mentions import allowed_mentions_problems
from tzurot.testing.fake_discord.modals import length_error, modal_errors
from tzurot.testing.fake_discord.rate_limits import RateLimits
from tzurot.testing.fake_discord.records import FakeInteraction
from tzurot.testing.fake_discord.rules import (
    CONTENT_LIMIT,
    INTERACTION_TOKEN_SECONDS,
    error,
)
from tzurot.testing.fake_discord.uploads import description_problems
from tzurot.testing.fake_discord.wire import Json, json_response, read_body, record_uploads

CHANNEL_MESSAGE, DEFERRED_MESSAGE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT, MODAL = 4, 5, 7, 8, 9
PONG, DEFERRED_UPDATE = 1, 6
EPHEMERAL = 1 << 6
PING, COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5  # interaction types
EMPTY_MESSAGE = error(50006, "Cannot send an empty message")
_NOT_A_DICT = ("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
# What makes a message not empty, besides its files (Create Message's starred fields).
_MESSAGE_PARTS = ("content", "embeds", "components", "sticker_ids", "poll")


def message_errors(errors: FormErrors, path: Path, message: Json) -> None:
    """A message's `content` (at most 2000 characters), `embeds` (embeds.py: at most 10,
    each field within its limit, 6000 characters in all), `allowed_mentions` (mentions.py) and
    the attachments' descriptions (uploads.py)."""
    if message.get("content") is not None:
        length_error(errors, (*path, "content"), message["content"], 0, CONTENT_LIMIT)
    embeds_errors(errors, (*path, "embeds"), message.get("embeds"))
    for where, code, text in allowed_mentions_problems(message.get("allowed_mentions")):
        errors.add((*path, "allowed_mentions", *where), code, text)
    for where, code, text in description_problems(message):
        errors.add((*path, *where), code, text)


def is_empty(message: Json, attachments: int) -> bool:
    """No content, embeds, components, stickers, poll nor attachments: Discord's 50006."""
    return attachments == 0 and not any(message.get(part) for part in _MESSAGE_PARTS)


def edit_empties(before: Json, body: Json, attachments: int) -> bool:
    """Whether an edit (Edit Webhook Message, and so Edit Original Interaction Response) leaves
    the message empty, Discord's 50006: the parts the edit sets replace the message's; the
    link previews Discord added go with the content that made them; `attachments` is how
    many the message has after the edit."""
    kept = [e for e in before.get("embeds") or [] if e.get("type") != "link"]
    return is_empty({**before, "embeds": kept, **body}, attachments)


def _choices_errors(errors: FormErrors, data: Json) -> None:
    path: Path = ("data", "choices")
    found = data.get("choices")
    if not isinstance(found, list):
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
        return
    if len(found) > MAX_CHOICES:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
    for n, choice in enumerate(found):
        if not isinstance(choice, dict):
            errors.add((*path, n), *_NOT_A_DICT)
            continue
        _choice_name_error(errors, (*path, n, "name"), choice.get("name"))
        value = choice.get("value")
        if value is None:
            errors.add((*path, n, "value"), "BASE_TYPE_REQUIRED", "This field is required")
        elif isinstance(value, str):
            length_error(errors, (*path, n, "value"), value, 0, CHOICE_LIMIT)


def _choice_name_error(errors: FormErrors, path: Path, name: object) -> None:
    """1-100 characters, and not only whitespace: Discord trims a name before its length
    check (a blank one is refused as BASE_TYPE_BAD_LENGTH, Statsify/statsify#830; a command
    description too, twilight-interactions#23). Stricter than a trimmed count, the 100 is
    counted untrimmed."""
    length_error(errors, path, name, 1, CHOICE_LIMIT)
    if isinstance(name, str) and name and not name.strip():
        errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {CHOICE_LIMIT} in length.")


def callback_types(interaction: Json) -> set[int]:
    """The callback types Discord takes for `interaction` (receiving-and-responding,
    "Interaction Callback Type"): PONG only to a PING; DEFERRED_UPDATE_MESSAGE and
    UPDATE_MESSAGE "Only valid for component-based interactions" (a component, or a modal
    submit from one: it carries that `message`); autocomplete results only to an autocomplete
    interaction, which takes nothing else (Discord's answer to a message there: 50035 "In
    type: Value must be one of {8}.", Cog-Creators/Red-DiscordBot#6374); MODAL "Not
    available for MODAL_SUBMIT and PING interactions". PREMIUM_REQUIRED (deprecated) and
    LAUNCH_ACTIVITY need monetization or Activities, which the fake's app has not."""
    kind = interaction.get("type")
    if kind == PING:
        return {PONG}
    if kind == AUTOCOMPLETE:
        return {AUTOCOMPLETE_RESULT}
    allowed = {CHANNEL_MESSAGE, DEFERRED_MESSAGE}
    if kind == COMPONENT or (kind == MODAL_SUBMIT and interaction.get("message")):
        allowed |= {DEFERRED_UPDATE, UPDATE_MESSAGE}
    if kind != MODAL_SUBMIT:
        allowed.add(MODAL)
    return allowed


def callback_error(body: Json, attachments: int, interaction: Json) -> Json | None:
    """Discord's 400 body for an interaction response it refuses, else None."""
    kind = body.get("type")
    data = body.get("data") or {}
    errors = FormErrors()
    allowed = callback_types(interaction)
    if kind not in allowed:
        errors.add(("type",), "BASE_TYPE_CHOICES", f"Value must be one of {allowed}.")
    elif kind in {CHANNEL_MESSAGE, UPDATE_MESSAGE}:
        message_errors(errors, ("data",), data)
    elif kind == AUTOCOMPLETE_RESULT:
        _choices_errors(errors, data)
    elif kind == MODAL:
        modal_errors(errors, data)
    elif kind == DEFERRED_MESSAGE and int(data.get("flags") or 0) & ~EPHEMERAL:
        # "the only valid message flag you may use is EPHEMERAL" (receiving-and-responding);
        # the docs give no error body: this is the fake's, at the field.
        errors.add(("data", "flags"), "BASE_TYPE_INVALID", "Only EPHEMERAL may be set.")
    if errors:
        return errors.body()
    if kind == CHANNEL_MESSAGE and is_empty(data, attachments):
        return EMPTY_MESSAGE
    return None


def _attachment_count(body: Json, files: list[bytes], before: int = 0) -> int:
    """The message's attachments after this request: the `attachments` it lists (kept ones
    and the new files) when it lists them, else those it had plus the new files."""
    if "attachments" in body:
        return max(len(body.get("attachments") or []), len(files))
    return before + len(files)


def webhook_bucket(record: FakeInteraction) -> str:
    """The rate limit bucket of an interaction's webhook (its token): follow-ups and edits
    "share the same rate limit properties as normal webhooks"."""
    return f"interaction-webhook:{record.token}"


class Interactions(RateLimits):
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
        attachments = _attachment_count(body.get("data") or {}, files)
        problem = callback_error(body, attachments, record.data)
        if problem is not None:
            return self.refuse(route, 400, problem)
        record.files.extend(files)
        record_uploads(request)
        record.responses.append(body)
        if body.get("type") == CHANNEL_MESSAGE:
            record.original_attachments = attachments
        answer: Json = {"interaction": {"id": str(record.id), "type": record.data["type"]}}
        if body.get("type") in {CHANNEL_MESSAGE, DEFERRED_MESSAGE}:
            message = self._interaction_message(record, body.get("data") or {})
            answer["resource"] = {"type": body["type"], "message": message}
        return json_response(answer)

    def _usable(
        self, route: str, request: web.Request, record: FakeInteraction
    ) -> web.Response | None:
        """Follow-ups and edits need an initial response, a token younger than 15 min, and
        the application's id as the webhook's ("/webhooks/{application.id}/{token}")."""
        expired = time.monotonic() - record.created > INTERACTION_TOKEN_SECONDS
        wrong_app = request.match_info.get("hook") != str(self.application_id)
        if expired or wrong_app or not record.acknowledged:
            return self.refuse(route, 404, error(10015, "Unknown Webhook"))
        return None

    def _unknown_followup(
        self, route: str, request: web.Request, record: FakeInteraction
    ) -> web.Response | None:
        """Edit Followup Message "Functions the same as Edit Webhook Message"
        (receiving-and-responding.mdx L489): a message this token did not send is 404 10008
        Unknown Message there, as for a webhook's."""
        named = request.match_info.get("message", "")
        if named == "@original" or (named.isdigit() and int(named) in record.followup_ids):
            return None
        return self.refuse(route, 404, error(10008, "Unknown Message"))

    def _too_large(
        self, route: str, record: FakeInteraction, files: list[bytes]
    ) -> web.Response | None:
        if any(len(f) > record.attachment_size_limit for f in files):
            return self.refuse(route, 413, error(40005, "Request entity too large"))
        return None

    async def _followup(self, request: web.Request, record: FakeInteraction) -> web.Response:
        route = "interaction_followup"
        refused = self._usable(route, request, record)
        if refused is not None:
            return refused
        body, files = await read_body(request, self.uploads)
        refused = self._too_large(route, record, files)
        if refused is not None:
            return refused
        errors = FormErrors()
        message_errors(errors, (), body)
        if errors:
            return self.refuse(route, 400, errors.body())
        if is_empty(body, _attachment_count(body, files)):
            return self.refuse(route, 400, EMPTY_MESSAGE)
        limited = self._limited(route, (webhook_bucket(record), self.webhook_rate))
        if limited is not None:
            return limited
        last = record.responses[-1]
        if last.get("type") == DEFERRED_MESSAGE and not any(
            r.get("type") in {"edit", "followup"} for r in record.responses
        ):
            record.deprecated_followups += 1
        record.files.extend(files)
        record_uploads(request)
        record.responses.append({"type": "followup", "data": body})
        headers = self._rate_headers(webhook_bucket(record))
        message = self._interaction_message(record, body)
        record.followup_ids.append(int(message["id"]))
        return json_response(message, headers=headers)

    async def _edit_original(self, request: web.Request, record: FakeInteraction) -> web.Response:
        route = "interaction_edit"
        refused = self._usable(route, request, record) or self._unknown_followup(
            route, request, record
        )
        if refused is not None:
            return refused
        body, files = await read_body(request, self.uploads)
        refused = self._too_large(route, record, files)
        if refused is not None:
            return refused
        errors = FormErrors()
        message_errors(errors, (), body)
        if errors:
            return self.refuse(route, 400, errors.body())
        named = request.match_info.get("message", "")
        original = named == "@original"
        attachments = _attachment_count(body, files, record.original_attachments)
        if original and edit_empties(record.original() or {}, body, attachments):
            return self.refuse(route, 400, EMPTY_MESSAGE)
        limited = self._limited(route, (webhook_bucket(record), self.webhook_rate))
        if limited is not None:
            return limited
        record.files.extend(files)
        record_uploads(request)
        record.responses.append({"type": "edit", "data": body})
        if original:
            record.original_attachments = attachments
        headers = self._rate_headers(webhook_bucket(record))
        message_id = None if original else int(named)
        edited = self._interaction_message(record, body, message_id=message_id)
        return json_response(edited, headers=headers)

    def _interaction_message(
        self, record: FakeInteraction, body: Json, *, message_id: int | None = None
    ) -> Json:
        channel = self.channels[int(record.data["channel_id"])]
        content = str(body.get("content") or "")
        data = self._message_json(channel, self.bot_user, content, message_id=message_id)
        data["embeds"] = body.get("embeds") or []
        data["flags"] = body.get("flags", 0)
        data["webhook_id"] = str(self.application_id)
        data["application_id"] = str(self.application_id)
        data["interaction_metadata"] = {
            "id": str(record.id),
            "type": record.data["type"],
            "user": (record.data.get("member") or record.data)["user"],  # a DM's has no member
        }
        return data
