"""Application command registration: Get, Bulk Overwrite, Create and Edit, global and per guild.

Each request is refused as Discord refuses it: the form by `command_rules` (400, 50035, the
errors at their field paths), then the scope's rules from "Registering a Command": names unique
per type within a scope (the later of two is refused: APPLICATION_COMMANDS_DUPLICATE_NAME at its
index) and at most 100 `CHAT_INPUT`, 15 `USER`, 15 `MESSAGE` and 1 `PRIMARY_ENTRY_POINT`
commands per scope (400, 30032). A refused request changes nothing.
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
        scope = self._scope(request)
        commands = await request.json()
        problem = bulk_overwrite_error(commands, guild=scope != "global")
        if problem is not None:
            return self.refuse("bulk_overwrite_commands", 400, problem)
        stored = [self._stored(c) for c in commands]
        self.synced_commands[scope] = stored
        return json_response(stored)

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
        commands.append(self._stored(command))
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
