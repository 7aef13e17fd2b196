"""The fake Discord refuses the interaction responses Discord refuses: a message's content over
2000 characters or more than 10 embeds (400, 50035, the field named under `data` in a
callback), an empty message (400, 50006), autocomplete past 25 choices or with a name or value
too long (or a name only of whitespace, as Discord trims it), a modal whose title, custom_id
or components are out of bounds. Each with what still passes. One test per rule, over raw
HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tzurot.testing.fake_discord import FakeDiscord, FakeInteraction, Json


@dataclass
class Http:
    fake: FakeDiscord
    session: aiohttp.ClientSession
    record: FakeInteraction

    @property
    def callback(self) -> str:
        return f"/interactions/{self.record.id}/{self.record.token}/callback"

    @property
    def followup(self) -> str:
        return f"/webhooks/{self.fake.application_id}/{self.record.token}"

    @property
    def original(self) -> str:
        return self.followup + "/messages/@original"

    async def call(self, method: str, path: str, body: Json, *, files: int = 0) -> tuple[int, Any]:
        """JSON, or multipart (`payload_json` and `files[n]`) as discord.py sends files."""
        kwargs: dict[str, Any] = {"json": body}
        if files:
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps(body), content_type="application/json")
            for n in range(files):
                form.add_field(f"files[{n}]", b"lore", filename=f"f{n}.json")
            kwargs = {"data": form}
        headers = {"Authorization": f"Bot {self.fake.token}"}
        url = self.fake.api_base + path
        async with self.session.request(method, url, headers=headers, **kwargs) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None


@asynccontextmanager
async def responding(*, focused: bool = False) -> AsyncIterator[Http]:
    """A slash command (an autocomplete with `focused`) waiting for the bot's response: a
    `/help` no app registered, which a fake told not to validate takes."""
    async with (
        FakeDiscord(validate_slash_options=False) as fake,
        aiohttp.ClientSession() as session,
    ):
        channel = fake.add_channel(fake.add_guild(), "general")
        options = {"query": "li"} if focused else None
        record = await fake.slash(
            channel,
            fake.make_user("alice"),
            "help",
            options,
            focused="query" if focused else None,
        )
        yield Http(fake, session, record)


def form_error(body: Any, *path: str | int) -> str:
    """The first `_errors` code at `path` of a 50035 body."""
    assert body["code"] == 50035, body
    node = body["errors"]
    for key in path:
        node = node[str(key)]
    return str(node["_errors"][0]["code"])


def choice(n: int, size: int = 5) -> Json:
    return {"name": f"{n}".rjust(size, "n"), "value": f"{n}".rjust(size, "v")}


def text_input(custom_id: str) -> Json:
    return {
        "type": 18,
        "label": "Name",
        "component": {"type": 4, "custom_id": custom_id, "style": 1},
    }


def modal(**changes: Any) -> Json:
    data: Json = {"custom_id": "rename", "title": "Rename", "components": [text_input("name")]}
    data.update(changes)
    return {"type": 9, "data": data}


# ---- messages: the initial response ----


async def test_content_over_2000_characters_is_an_invalid_form_body() -> None:
    async with responding() as http:
        status, body = await http.call(
            "POST", http.callback, {"type": 4, "data": {"content": "x" * 2001}}
        )
        assert status == 400
        assert form_error(body, "data", "content") == "BASE_TYPE_MAX_LENGTH"
        assert http.record.responses == []  # refused: not acknowledged
        assert http.fake.refusals == [("interaction_callback", 400, 50035)]
        status, _ = await http.call(
            "POST", http.callback, {"type": 4, "data": {"content": "x" * 2000}}
        )
        assert status == 200


async def test_an_empty_message_is_refused_and_a_file_or_an_embed_is_enough() -> None:
    for data in ({}, {"content": ""}, {"content": "", "embeds": []}):
        async with responding() as http:
            status, body = await http.call("POST", http.callback, {"type": 4, "data": data})
            assert (status, body["code"]) == (400, 50006), data
    async with responding() as http:
        status, body = await http.call("POST", http.callback, {"type": 4})
        assert (status, body["code"]) == (400, 50006)
    async with responding() as http:
        status, _ = await http.call("POST", http.callback, {"type": 4, "data": {}}, files=1)
        assert status == 200
    async with responding() as http:
        embed = {"title": "Lilith"}
        status, _ = await http.call("POST", http.callback, {"type": 4, "data": {"embeds": [embed]}})
        assert status == 200


async def test_more_than_10_embeds_are_refused() -> None:
    async with responding() as http:
        embeds = [{"title": str(n)} for n in range(11)]
        status, body = await http.call(
            "POST", http.callback, {"type": 4, "data": {"embeds": embeds}}
        )
        assert status == 400
        assert form_error(body, "data", "embeds") == "BASE_TYPE_MAX_LENGTH"
        data = {"embeds": embeds[:10]}
        assert (await http.call("POST", http.callback, {"type": 4, "data": data}))[0] == 200


async def test_a_deferral_needs_no_content() -> None:
    async with responding() as http:
        status, _ = await http.call("POST", http.callback, {"type": 5, "data": {"flags": 64}})
        assert status == 200


# ---- autocomplete ----


async def test_more_than_25_choices_are_refused() -> None:
    async with responding(focused=True) as http:
        many = [choice(n) for n in range(26)]
        status, body = await http.call(
            "POST", http.callback, {"type": 8, "data": {"choices": many}}
        )
        assert status == 400
        assert form_error(body, "data", "choices") == "BASE_TYPE_MAX_LENGTH"
        most = [choice(n, 100) for n in range(25)]
        status, _ = await http.call("POST", http.callback, {"type": 8, "data": {"choices": most}})
        assert status == 200
        assert len(http.record.choices()) == 25


@pytest.mark.parametrize(
    ("bad", "field", "code"),
    [
        ({"name": "n" * 101, "value": "v"}, "name", "BASE_TYPE_BAD_LENGTH"),
        ({"name": "", "value": "v"}, "name", "BASE_TYPE_BAD_LENGTH"),
        ({"name": " \t\u3000", "value": "v"}, "name", "BASE_TYPE_BAD_LENGTH"),  # trimmed: empty
        ({"value": "v"}, "name", "BASE_TYPE_REQUIRED"),
        ({"name": "n", "value": "v" * 101}, "value", "BASE_TYPE_MAX_LENGTH"),
        ({"name": "n"}, "value", "BASE_TYPE_REQUIRED"),
    ],
)
async def test_a_choice_needs_a_name_of_1_to_100_and_a_value_of_at_most_100(
    bad: Json, field: str, code: str
) -> None:
    async with responding(focused=True) as http:
        given = [choice(0), bad]
        status, body = await http.call(
            "POST", http.callback, {"type": 8, "data": {"choices": given}}
        )
        assert status == 400
        assert form_error(body, "data", "choices", 1, field) == code


async def test_a_name_with_spaces_around_it_and_an_empty_value_pass() -> None:
    async with responding(focused=True) as http:
        given = [{"name": " n ", "value": ""}]
        status, _ = await http.call("POST", http.callback, {"type": 8, "data": {"choices": given}})
        assert status == 200


async def test_no_choices_and_numeric_values_pass() -> None:
    async with responding(focused=True) as http:
        status, body = await http.call("POST", http.callback, {"type": 8, "data": {}})
        assert status == 400
        assert form_error(body, "data", "choices") == "BASE_TYPE_REQUIRED"
        numbers = [{"name": "one", "value": 1}, {"name": "half", "value": 0.5}]
        status, _ = await http.call(
            "POST", http.callback, {"type": 8, "data": {"choices": numbers}}
        )
        assert status == 200
    async with responding(focused=True) as http:
        status, _ = await http.call("POST", http.callback, {"type": 8, "data": {"choices": []}})
        assert status == 200


# ---- modals ----


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"title": "t" * 46}, "title", "BASE_TYPE_MAX_LENGTH"),
        ({"title": None}, "title", "BASE_TYPE_REQUIRED"),
        ({"custom_id": "c" * 101}, "custom_id", "BASE_TYPE_BAD_LENGTH"),
        ({"custom_id": ""}, "custom_id", "BASE_TYPE_BAD_LENGTH"),
        ({"components": []}, "components", "BASE_TYPE_BAD_LENGTH"),
        (
            {"components": [text_input(str(n)) for n in range(6)]},
            "components",
            "BASE_TYPE_BAD_LENGTH",
        ),
        ({"components": None}, "components", "BASE_TYPE_REQUIRED"),
    ],
)
async def test_a_modal_out_of_bounds_is_refused(changes: Json, field: str, code: str) -> None:
    async with responding() as http:
        status, body = await http.call("POST", http.callback, modal(**changes))
        assert status == 400
        assert form_error(body, "data", field) == code
        assert http.record.modal() is None


async def test_a_modal_at_its_limits_passes() -> None:
    async with responding() as http:
        most = modal(
            title="t" * 45,
            custom_id="c" * 100,
            components=[text_input(str(n)) for n in range(5)],
        )
        status, _ = await http.call("POST", http.callback, most)
        assert status == 200
        assert http.record.modal() is not None


# ---- follow-ups and edits of the original ----


async def test_a_followup_follows_the_message_rules() -> None:
    async with responding() as http:
        await http.call("POST", http.callback, {"type": 4, "data": {"content": "first"}})
        status, body = await http.call("POST", http.followup, {"content": "x" * 2001})
        assert status == 400
        assert form_error(body, "content") == "BASE_TYPE_MAX_LENGTH"
        status, body = await http.call("POST", http.followup, {"content": ""})
        assert (status, body["code"]) == (400, 50006)
        status, body = await http.call("POST", http.followup, {"embeds": [{}] * 11})
        assert form_error(body, "embeds") == "BASE_TYPE_MAX_LENGTH"
        assert (await http.call("POST", http.followup, {"content": "x" * 2000}))[0] == 200
        assert (await http.call("POST", http.followup, {}, files=1))[0] == 200
        assert [r["type"] for r in http.record.responses] == [4, "followup", "followup"]


async def test_an_edit_of_the_original_may_not_overflow_nor_empty_it() -> None:
    async with responding() as http:
        await http.call("POST", http.callback, {"type": 5, "data": {"flags": 64}})
        status, body = await http.call("PATCH", http.original, {"content": "x" * 2001})
        assert status == 400
        assert form_error(body, "content") == "BASE_TYPE_MAX_LENGTH"
        status, body = await http.call("PATCH", http.original, {"content": ""})
        assert (status, body["code"]) == (400, 50006)  # the deferred message would stay empty
        assert (await http.call("PATCH", http.original, {"content": "x" * 2000}))[0] == 200
        status, body = await http.call("PATCH", http.original, {"content": ""})
        assert (status, body["code"]) == (400, 50006)  # it would empty the message


async def test_an_edit_may_drop_the_content_of_a_message_with_a_file() -> None:
    async with responding() as http:
        await http.call("POST", http.callback, {"type": 5})
        attached = {"attachments": [{"id": 0, "filename": "f0.json"}]}
        status, _ = await http.call(
            "PATCH", http.original, {"content": "lore", **attached}, files=1
        )
        assert status == 200
        assert (await http.call("PATCH", http.original, {"content": ""}))[0] == 200
        status, body = await http.call("PATCH", http.original, {"attachments": []})
        assert (status, body["code"]) == (400, 50006)  # no content and now no file either
