"""Where Discord offers each command: synced globally in production, a command that is not
guild-only is offered in the user's DM with the bot too (discord-api-docs Application Commands,
"Interaction Contexts"). Those about a server's channel are guild-only; those about the user
(their keys, time zone, usage, models, memories, characters) stay offered in a DM."""

from __future__ import annotations

from tzurot.testing.fake_discord import Json

from .test_command_limits import registered

GUILD = 0
SERVER_ONLY = {"channel", "freewill", "notifications", "history", "Speak"}


def _server_only(command: Json) -> bool:
    """Offered only in a server: `contexts` GUILD alone, or the older `dm_permission` false."""
    contexts = command.get("contexts")
    if contexts is not None:
        return [int(c) for c in contexts] == [GUILD]
    return command.get("dm_permission") is False


def test_only_the_commands_about_a_server_channel_are_guild_only() -> None:
    commands = registered()
    assert {c["name"] for c in commands if _server_only(c)} == SERVER_ONLY


def test_the_personal_commands_are_offered_in_a_dm() -> None:
    offered = {c["name"] for c in registered() if not _server_only(c)}
    assert offered >= {
        "wallet", "timezone", "usage", "model", "llm-config", "memory", "character",
        "settings", "lorebook", "help", "Inspect",
    }  # fmt: skip
