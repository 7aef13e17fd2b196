"""The fake Discord keeps a command's id across Bulk Overwrites (by its `id`, else by its type
and name), changes its version only when the command changed, and counts only new commands
against the 200 creates a day per scope (400, 30034). Over raw HTTP."""

from __future__ import annotations

from tests.unit.testing.test_fake_discord_commands import (
    USER_COMMAND,
    Http,
    accepted,
    commands_http,
    slash,
)
from tzurot.testing.fake_discord import Json

DAY = 24 * 60 * 60.0


def by_name(commands: list[Json]) -> dict[tuple[int, str], Json]:
    return {(c.get("type", 1), c["name"]): c for c in commands}


async def put_ok(http: Http, *commands: Json, guild: bool = False) -> dict[tuple[int, str], Json]:
    status, body = await http.put(list(commands), guild=guild)
    assert status == 200, body
    return by_name(body)


# ---- ids across Bulk Overwrites ----


async def test_bulk_overwrite_keeps_the_id_of_a_command_of_the_same_type_and_name() -> None:
    async with commands_http() as http:
        menu = {"type": USER_COMMAND, "name": "ping"}
        first = await put_ok(http, slash("ping"), slash("pong"), menu)
        then = await put_ok(http, slash("ping", "changed"), menu, slash("zap"))
        assert then[1, "ping"]["id"] == first[1, "ping"]["id"]
        assert then[USER_COMMAND, "ping"]["id"] == first[USER_COMMAND, "ping"]["id"]
        old_ids = {c["id"] for c in first.values()}
        assert then[1, "zap"]["id"] not in old_ids  # a new command, a new id
        assert int(then[1, "ping"]["version"]) > int(first[1, "ping"]["version"])  # changed
        assert then[USER_COMMAND, "ping"]["version"] == first[USER_COMMAND, "ping"]["version"]
        again = await put_ok(http, slash("ping", "changed"), menu, slash("zap"))
        assert again == then  # the same commands again: nothing changes
        fetched = await http.call("GET", "/commands", None)
        assert by_name(fetched[1]) == then


async def test_bulk_overwrite_with_an_id_renames_the_command_it_names() -> None:
    async with commands_http() as http:
        first = await put_ok(http, slash("ping"), guild=True)
        command_id = first[1, "ping"]["id"]
        renamed = await put_ok(http, {**slash("pong"), "id": command_id}, guild=True)
        assert renamed[1, "pong"]["id"] == command_id


async def test_a_command_of_another_type_is_a_new_command() -> None:
    async with commands_http() as http:
        first = await put_ok(http, slash("ping"))
        then = await put_ok(http, {"type": USER_COMMAND, "name": "ping"})
        assert then[USER_COMMAND, "ping"]["id"] != first[1, "ping"]["id"]


# ---- 200 creates a day per scope ----


def batch(prefix: str, count: int = 100) -> list[Json]:
    return [slash(f"{prefix}{i}") for i in range(count)]


async def test_200_new_commands_a_day_per_guild_then_30034() -> None:
    async with commands_http() as http:
        await accepted(http, *batch("a"), guild=True)
        await accepted(http, *batch("b"), guild=True)  # 200 creates: the day's last
        kept = list(http.fake.synced_commands[http.guild["id"]])
        status, body = await http.put([*batch("b", 99), slash("c")], guild=True)
        assert (status, body["code"]) == (400, 30034)
        assert body["message"] == (
            "Max number of daily application command creates has been reached (200)"
        )
        assert http.fake.synced_commands[http.guild["id"]] == kept  # unchanged
        assert http.fake.refusals[-1] == ("bulk_overwrite_commands", 400, 30034)
        # Updating what exists creates nothing, nor does a Create of an existing name.
        await accepted(http, *batch("b", 99), guild=True)
        scope = f"/guilds/{http.guild['id']}/commands"
        status, _ = await http.call("POST", scope, slash("b0", "new description"))
        assert status == 200
        status, body = await http.call("POST", scope, slash("c"))
        assert (status, body["code"]) == (400, 30034)
        # Another guild and the global scope count their own.
        other = http.fake.add_guild()
        status, _ = await http.call("PUT", f"/guilds/{other['id']}/commands", [slash("c")])
        assert status == 200
        await accepted(http, slash("c"))


async def test_the_creates_count_again_a_day_later() -> None:
    async with commands_http() as http:
        now = [1000.0]
        http.fake.command_clock = lambda: now[0]
        await accepted(http, *batch("a"))
        await accepted(http, *batch("b"))
        status, _ = await http.put([slash("c")])
        assert status == 400
        now[0] += DAY
        await accepted(http, slash("c"))
