"""Application command registration: Get, Bulk Overwrite, Create and Edit, global and per guild.

Each request is refused as Discord refuses it: the form by `command_rules` (400, 50035, the
errors at their field paths), then the scope's rules from "Registering a Command": names unique
per type within a scope (the later of two is refused: APPLICATION_COMMANDS_DUPLICATE_NAME at its
index), at most 100 `CHAT_INPUT`, 15 `USER`, 15 `MESSAGE` and 1 `PRIMARY_ENTRY_POINT`
commands per scope (400, 30032), and 200 creates a day per scope (400, 30034, as Discord
answers a sync past it). A Bulk Overwrite updates the commands it names (by `id`, else by type
and name: they keep their ids, and their versions when unchanged) and creates only the others,
which alone count as creates ("Bulk Overwrite Global Application Commands"); a Create of an
existing name updates it. A refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from tzurot.testing.fake_discord.command_rules import (
    CHAT_INPUT,
    MAX_COMMANDS,
    FormErrors,
    command_errors,
)
from tzurot.testing.fake_discord.rules import error
from tzurot.testing.fake_discord.webhooks import Webhooks
from tzurot.testing.fake_discord.wire import Json, json_response, not_found

MAX_COMMANDS_REACHED = 30032
DAILY_CREATES_REACHED = 30034
MAX_DAILY_CREATES = 200
DAY_SECONDS = 24 * 60 * 60.0
UNKNOWN_COMMAND = 10063
_DUPLICATE = ("APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")
# What Discord sets on a command; the rest is what the app sent.
_SERVER_FIELDS = ("id", "application_id", "version")


def _key(command: Json) -> tuple[object, object]:
    return command.get("type", CHAT_INPUT), command.get("name")


def bulk_overwrite_error(commands: object, *, guild: bool) -> Json | None:
    """Discord's 400 body for a Bulk Overwrite it refuses: the form first (50035, every field
    at its path), then the number of commands of each type (30032); None if it accepts it."""
    errors = FormErrors()
    if not isinstance(commands, list):
        errors.add((), "BASE_TYPE_ARRAY", "Must be an array.")
        return errors.body()
    seen: set[tuple[object, object]] = set()
    for index, command in enumerate(commands):
        command_errors(errors, (index,), command, guild=guild)
        if isinstance(command, dict):
            if _key(command) in seen:
                errors.add((index,), *_DUPLICATE)
            seen.add(_key(command))
    if errors:
        return errors.body()
    return count_error(commands)


def count_error(commands: Iterable[Json]) -> Json | None:
    """30032 when a scope would hold more commands of a type than Discord allows."""
    kinds = [c.get("type", CHAT_INPUT) for c in commands]
    for kind, limit in MAX_COMMANDS.items():
        if kinds.count(kind) > limit:
            return error(
                MAX_COMMANDS_REACHED, f"Maximum number of application commands reached ({limit})"
            )
    return None


def daily_creates_error() -> Json:
    """30034, in the words Discord answers it (its error code table says "Maximum number of
    daily application command creates has been reached (200)")."""
    return error(
        DAILY_CREATES_REACHED,
        f"Max number of daily application command creates has been reached ({MAX_DAILY_CREATES})",
    )


def command_error(command: object, *, guild: bool) -> Json | None:
    """Discord's 50035 body for a Create or Edit it refuses (paths from the command's root)."""
    errors = FormErrors()
    command_errors(errors, (), command, guild=guild)
    return errors.body() if errors else None


class ApplicationCommands(Webhooks):
    """The application command routes; `synced_commands` holds each scope's commands."""

    def _stored(self, command: Json, command_id: int | None = None, version: int = 1) -> Json:
        return {
            "description": "",  # Discord answers "" for context menus
            **command,
            "id": str(command_id if command_id is not None else self.snowflake()),
            "application_id": str(self.application_id),
            "version": str(version),
            "default_member_permissions": command.get("default_member_permissions"),
        }

    @staticmethod
    def _scope(request: web.Request) -> str:
        return request.match_info.get("guild", "global")

    async def _fetch_commands(self, request: web.Request) -> web.Response:
        return json_response(self.synced_commands.get(self._scope(request), []))

    async def _bulk_overwrite_commands(self, request: web.Request) -> web.Response:
        route, scope = "bulk_overwrite_commands", self._scope(request)
        commands = await request.json()
        problem = bulk_overwrite_error(commands, guild=scope != "global")
        if problem is not None:
            return self.refuse(route, 400, problem)
        updated = self._updated(self.synced_commands.get(scope, []), commands)
        created = len(commands) - len(updated)
        if created > self._creates_left(scope):
            return self.refuse(route, 400, daily_creates_error())
        stored = [self._overwrite(c, updated.get(i)) for i, c in enumerate(commands)]
        self.synced_commands[scope] = stored
        self._created(scope, created)
        return json_response(stored)

    @staticmethod
    def _updated(existing: list[Json], commands: list[Json]) -> dict[int, Json]:
        """The existing command each sent one updates, by index: the one its `id` names, else
        the one of its type and name; each existing command updated at most once."""
        found: dict[int, Json] = {}
        by_id = {c["id"]: c for c in existing}
        for index, command in enumerate(commands):
            named = by_id.pop(str(command.get("id")), None)
            if named is not None:
                found[index] = named
        for index, command in enumerate(commands):
            if index not in found:
                same = next((c for c in by_id.values() if _key(c) == _key(command)), None)
                if same is not None:
                    found[index] = by_id.pop(same["id"])
        return found

    def _overwrite(self, command: Json, old: Json | None) -> Json:
        """`command` stored: new, or as an update of `old` (its id; a new version if changed)."""
        if old is None:
            return self._stored(command)
        command_id, version = int(old["id"]), int(old["version"])
        same = self._stored(command, command_id, version)
        return same if same == old else self._stored(command, command_id, version + 1)

    def _creates_left(self, scope: str) -> int:
        """How many more commands `scope` may create in the day up to now."""
        now = self.command_clock()
        recent = [t for t in self.command_creates.get(scope, []) if now - t < DAY_SECONDS]
        self.command_creates[scope] = recent
        return MAX_DAILY_CREATES - len(recent)

    def _created(self, scope: str, count: int) -> None:
        self.command_creates.setdefault(scope, []).extend([self.command_clock()] * count)

    async def _create_command(self, request: web.Request) -> web.Response:
        """201 for a new command; 200 when one of its type has the name (it is overwritten)."""
        route, scope = "create_command", self._scope(request)
        command = await request.json()
        problem = command_error(command, guild=scope != "global")
        if problem is not None:
            return self.refuse(route, 400, problem)
        commands = self.synced_commands.setdefault(scope, [])
        for index, old in enumerate(commands):
            if _key(old) == _key(command):
                commands[index] = self._stored(command, int(old["id"]), int(old["version"]) + 1)
                return json_response(commands[index])
        too_many = count_error([*commands, command])
        if too_many is not None:
            return self.refuse(route, 400, too_many)
        if self._creates_left(scope) < 1:
            return self.refuse(route, 400, daily_creates_error())
        commands.append(self._stored(command))
        self._created(scope, 1)
        return json_response(commands[-1], status=201)

    async def _edit_command(self, request: web.Request) -> web.Response:
        """The fields sent replace the command's; its type stays."""
        route, scope = "edit_command", self._scope(request)
        commands = self.synced_commands.get(scope, [])
        found = [i for i, c in enumerate(commands) if c["id"] == request.match_info["command"]]
        if not found:
            return not_found(UNKNOWN_COMMAND, "Unknown application command")
        old = commands[found[0]]
        changes = await request.json()
        if not isinstance(changes, dict):
            return self.refuse(route, 400, command_error(changes, guild=False) or {})
        sent = {k: v for k, v in old.items() if k not in _SERVER_FIELDS}
        edited = {**sent, **changes, "type": old.get("type", CHAT_INPUT)}
        problem = command_error(edited, guild=scope != "global")
        if problem is None and any(
            _key(c) == _key(edited) for c in commands if c["id"] != old["id"]
        ):
            duplicate = FormErrors()
            duplicate.add(("name",), *_DUPLICATE)
            problem = duplicate.body()
        if problem is not None:
            return self.refuse(route, 400, problem)
        commands[found[0]] = self._stored(edited, int(old["id"]), int(old["version"]) + 1)
        return json_response(commands[found[0]])
