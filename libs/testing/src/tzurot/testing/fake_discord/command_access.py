"""Who may run a registered command, and where: what Discord's client offers (it shows no
command a user may not run there, so Discord never delivers such an interaction; a test asking
the fake for one gets `CommandUnavailable`, as `slash_options` refuses options the client would
not send). And the interaction's fields that say where it was invoked.

Written from discord-api-docs `interactions/application-commands`:
- "Using Default Permissions": a command's `default_member_permissions` are "the permissions a
  user must have to use it"; `"0"` "will prohibit anyone in a guild from using the command
  unless a specific overwrite is configured or the user has admin permissions". The docs do not
  say where the member's permissions are taken; the fake compares those in the channel of the
  invocation, with its overwrites (what the interaction's `member.permissions` holds). The
  deprecated `default_permission: false` ("whether the command is enabled by default") is read
  as `"0"`, its documented replacement, when `default_member_permissions` is null.
- "Application Command Permissions Object": "Members with the Administrator permission can use
  all commands"; overwrites for a user (type 2), a channel (3, `guild_id - 1` for all channels;
  a channel's apply to its threads) and @everyone (role `guild_id`), at most 100 per command, for
  commands "of all types". change-log "Upcoming Application Command Permission Changes"
  (2022-11-17): command-level configurations override "any restrictions set by
  `default_member_permissions`". The fake reads a user's or @everyone's overwrite so; a channel
  deny is decisive, a channel allow only says where (`default_member_permissions` still decide
  who; the Help Center's "Updates to Command Permissions" reads the same). Only command-level
  overwrites are modelled (no app-level ones; of roles only @everyone: users have no roles).
- topics/permissions: USE_APPLICATION_COMMANDS "allows members to use application commands",
  and a channel not viewed, or a server one is not a member of, is not there for them.
- "Interaction Contexts" and "Using Default Permissions": `contexts` (GUILD 0, BOT_DM 1,
  PRIVATE_CHANNEL 2; "only for globally-scoped commands": "Guild commands don't support the
  BOT_DM interaction context"), the deprecated `dm_permission: false` when `contexts` is null;
  PRIVATE_CHANNEL "is only meaningful for commands installed to a user (when the command's
  `integration_types` includes USER_INSTALL)".
- "Age-Restricted Commands": an `nsfw` command is used from "an age-restricted channel or a DM
  with the app after enabling age-restricted commands" (the fake's users are all adults), so
  never from another DM or a group DM.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tzurot.testing.fake_discord.command_rules import CHAT_INPUT
from tzurot.testing.fake_discord.gateway import Gateway
from tzurot.testing.fake_discord.rules import DM, GROUP_DM, THREAD_TYPES, Permission
from tzurot.testing.fake_discord.slash_options import (
    InvalidSlashCommand,
    not_registered,
    registered_command,
)
from tzurot.testing.fake_discord.wire import Json

GUILD, BOT_DM, PRIVATE_CHANNEL = 0, 1, 2  # interaction context types
GUILD_INSTALL, USER_INSTALL = 0, 1  # integration types
ROLE, USER, CHANNEL = 1, 2, 3  # command permission types (of roles, only @everyone's: guild_id)
MAX_COMMAND_PERMISSIONS = 100  # "Guild Application Command Permissions Structure"
# receiving-and-responding "Interaction Structure", `app_permissions`: in (G)DMs with other
# users ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE, "and additionally USE_EXTERNAL_EMOJIS
# for DMs with the app's bot user".
PRIVATE_APP_PERMISSIONS = (
    Permission.ATTACH_FILES | Permission.EMBED_LINKS | Permission.MENTION_EVERYONE
)
BOT_DM_APP_PERMISSIONS = PRIVATE_APP_PERMISSIONS | Permission.USE_EXTERNAL_EMOJIS
_CONTEXT_NAMES = {
    GUILD: "a server",
    BOT_DM: "a DM with the app",
    PRIVATE_CHANNEL: "a DM or group DM",
}


class CommandUnavailable(InvalidSlashCommand):
    """Discord's client does not offer this command to this user here (permissions, context or
    age restriction), so Discord would never deliver it."""


def interaction_context(channel: Json, bot_dm_channels: Collection[int]) -> int:
    """Where an interaction in `channel` comes from: a guild, the bot's DM, another private one."""
    if channel.get("guild_id"):
        return GUILD
    return BOT_DM if int(channel["id"]) in bot_dm_channels else PRIVATE_CHANNEL


def command_installs(command: Json | None, *, guild_scoped: bool) -> frozenset[int]:
    """The installation contexts a command is supported in: `integration_types` (only for a
    global command; the fake's default, and a guild command's, is GUILD_INSTALL)."""
    if command is None or guild_scoped:
        return frozenset({GUILD_INSTALL})
    return frozenset(int(i) for i in command.get("integration_types") or [GUILD_INSTALL])


def integration_owners(installs: Collection[int], context: int, channel: Json, user: Json) -> Json:
    """`authorizing_integration_owners` (receiving-and-responding "Authorizing Integration
    Owners Object"): a key per installation context the command supports and the interaction
    context allows: GUILD_INSTALL ("0") in a server (its id) or the bot's DM ("0"), never in
    another private channel; USER_INSTALL ("1") the user's id (the fake's users have all
    installed the app, as its servers have)."""
    owners: Json = {}
    if GUILD_INSTALL in installs and context != PRIVATE_CHANNEL:
        owners["0"] = channel["guild_id"] if context == GUILD else "0"
    if USER_INSTALL in installs:
        owners["1"] = user["id"]
    return owners


def context_problem(command: Json, context: int, *, guild_scoped: bool) -> str | None:
    """Why the command is not offered in `context`, else None."""
    if guild_scoped:  # found only in its guild (registered_command); no `contexts` to read
        return None
    where = _CONTEXT_NAMES[context]
    contexts = command.get("contexts")
    if contexts is not None:
        if context not in {int(c) for c in contexts}:
            return f"has contexts {contexts}: not offered in {where} ({context})"
    elif context == BOT_DM and command.get("dm_permission") is False:
        return "has dm_permission false: not offered in a DM with the app"
    installs = command_installs(command, guild_scoped=False)
    if context == PRIVATE_CHANNEL and USER_INSTALL not in installs:
        return "is not installed to users (integration_types): not offered in a DM or group DM"
    return None


def permission_problem(
    command: Json, channel: Json, user_id: str, have: int, overwrites: list[Json]
) -> str | None:
    """Why a member with permissions `have` in the guild `channel` is not offered the command,
    given its command-level permission overwrites in that guild; else None."""
    if have & Permission.ADMINISTRATOR:
        return None
    if not have & Permission.VIEW_CHANNEL or not have & Permission.USE_APPLICATION_COMMANDS:
        lacking = (
            "View Channel" if not have & Permission.VIEW_CHANNEL else "Use Application Commands"
        )
        return f"cannot be run in channel {channel['id']}: the member lacks {lacking} there"
    decided = _overwritten(channel, user_id, overwrites)
    if decided is not None:
        return (
            None
            if decided
            else "is disabled for this member or channel by the server's command permissions"
        )
    required = command.get("default_member_permissions")
    if required is None and command.get("default_permission") is False:
        required = "0"
    if required is not None and int(required) == 0:
        return 'has default_member_permissions "0": only administrators may run it'
    if required is None or (have & int(required)) == int(required):
        return None
    return (
        f"needs default_member_permissions {required}: the member has {have} here "
        "(Discord's client does not show it to them; give the member the permission)"
    )


def _overwritten(channel: Json, user_id: str, overwrites: list[Json]) -> bool | None:
    """What the command-level overwrites decide: False if the channel (its own, its parent's
    for a thread, else all channels') is disabled; else the user's, else @everyone's; None
    when none applies (`default_member_permissions` decides: a channel allow alone does not)."""
    guild_id = int(channel["guild_id"])
    by_target = {(int(o["type"]), int(o["id"])): o["permission"] for o in overwrites}
    where = [int(channel["id"])]
    if channel.get("type") in THREAD_TYPES and channel.get("parent_id"):
        where.append(int(channel["parent_id"]))
    channel_rule = next(
        (by_target[(CHANNEL, c)] for c in [*where, guild_id - 1] if (CHANNEL, c) in by_target),
        None,
    )
    if channel_rule is False:
        return False
    for target in ((USER, int(user_id)), (ROLE, guild_id)):  # the user's, then @everyone's
        if target in by_target:
            return bool(by_target[target])
    return None


def age_problem(
    command: Json, channel: Json, parent: Json | None, context: int, *, dm_allowed: bool
) -> str | None:
    """Why an `nsfw` command is not offered in `channel`, else None."""
    if not command.get("nsfw"):
        return None
    if context == BOT_DM:
        return None if dm_allowed else "is age-restricted: the user has not enabled it in DMs"
    if context == PRIVATE_CHANNEL:
        return "is age-restricted: offered only in an age-restricted channel or the app's DM"
    source = parent if channel.get("type") in THREAD_TYPES and parent is not None else channel
    return None if source.get("nsfw") else "is age-restricted: not offered in a channel not so"


def command_permissions_problem(guild: Json, permissions: Sequence[Json]) -> str | None:
    """Why Discord (or, for a role, the fake) would not take these command permissions: at
    most 100, each `{"id", "type", "permission"}` with a type role (1), user (2) or channel
    (3) and a boolean permission; of roles, only @everyone's (the guild's id)."""
    if len(permissions) > MAX_COMMAND_PERMISSIONS:
        return f"{len(permissions)} permissions: at most {MAX_COMMAND_PERMISSIONS} per command"
    for index, entry in enumerate(permissions):
        kind, allowed = entry.get("type"), entry.get("permission")
        if "id" not in entry:
            return f"{index}.id: missing"
        if type(kind) is not int or kind not in (ROLE, USER, CHANNEL):
            return f"{index}.type {kind!r}: role (1), user (2) or channel (3)"
        if not isinstance(allowed, bool):
            return f"{index}.permission {allowed!r}: true or false"
        if kind == ROLE and str(entry["id"]) != str(guild["id"]):
            return (
                f"{index}: role {entry['id']}: the fake's users hold no roles, so only "
                "@everyone's (id the guild's) can be honoured"
            )
    return None


class CommandAccess(Gateway):
    """The places and settings command access depends on: DMs, the server's command
    permissions, users' age-restricted DMs; the check itself; and the interaction's fields
    that depend on where it was invoked."""

    def dm_channel(self, user: Json, *, other: Json | None = None) -> Json:
        """A DM between `user` and the bot (BOT_DM), or with `other`, another user (a
        PRIVATE_CHANNEL). Its `recipients` are the other party's, as resources/channel's
        "Example DM Channel": `user` (the bot's view of its DM), else `other` (`user`'s)."""
        if other is not None and other["id"] == self.bot_user["id"]:
            other = None  # the bot's DM all the same
        channel: Json = {
            "id": str(self.snowflake()),
            "type": DM,
            "recipients": [dict(other or user)],
            "last_message_id": None,
            "flags": 0,
        }
        self.channels[int(channel["id"])] = channel
        if other is None:
            self.bot_dm_channels.add(int(channel["id"]))
        return channel

    def group_dm(self, user: Json, *others: Json) -> Json:
        """A group DM `user` made with `others` (a PRIVATE_CHANNEL; resources/channel "Example
        Group DM Channel": `others` the recipients, `user` the owner)."""
        channel: Json = {
            "id": str(self.snowflake()),
            "type": GROUP_DM,
            "name": None,
            "icon": None,
            "recipients": [dict(o) for o in others],
            "owner_id": user["id"],
            "last_message_id": None,
            "flags": 0,
        }
        self.channels[int(channel["id"])] = channel
        return channel

    def set_command_permissions(
        self, guild: Json, name: str, permissions: Sequence[Json], *, kind: int = CHAT_INPUT
    ) -> None:
        """A server admin sets the command `name`'s command-level permissions in `guild`
        (Server Settings > Integrations; what Edit Application Command Permissions stores):
        `{"id", "type", "permission"}` each, for a user (2), a channel (3) or @everyone
        (type 1, id the guild's). `kind`: the command's type (2 user, 3 message command).
        ValueError for what Discord refuses and for a role the fake cannot honour. Call it
        once the bot has synced its commands."""
        problem = command_permissions_problem(guild, permissions)
        if problem is not None:
            raise ValueError(f"command permissions for {name}: {problem}")
        found = registered_command(self.synced_commands, guild["id"], name, kind=kind)
        if found is None:
            raise InvalidSlashCommand(not_registered(name, guild["id"], kind=kind))
        key = (str(guild["id"]), str(found[0]["id"]))
        self.command_permissions[key] = [dict(p) for p in permissions]

    def allow_age_restricted_dms(self, user: Json) -> None:
        """`user` enables age-restricted commands in DMs with apps (their User Settings)."""
        self.age_restricted_dm_users.add(str(user["id"]))

    def check_command(
        self, channel: Json, user: Json, command: Json, *, guild_scoped: bool, granted: int
    ) -> None:
        """CommandUnavailable when Discord's client would not offer `command` to `user` in
        `channel` (`granted`: the permissions the test gives the member besides @everyone's)."""
        context = interaction_context(channel, self.bot_dm_channels)
        problem = None
        if context == GUILD and not self.is_member(int(channel["guild_id"]), int(user["id"])):
            problem = "cannot be run in this server: the user is not a member of it"
        problem = problem or context_problem(command, context, guild_scoped=guild_scoped)
        if problem is None:
            parent_id = channel.get("parent_id")
            parent = self.channels.get(int(parent_id)) if parent_id else None
            dm_allowed = str(user["id"]) in self.age_restricted_dm_users
            problem = age_problem(command, channel, parent, context, dm_allowed=dm_allowed)
        if problem is None and context == GUILD:
            have = self.member_permissions(channel, user, granted=granted)
            overwrites = self.command_permissions.get((str(channel["guild_id"]), command["id"]))
            problem = permission_problem(command, channel, str(user["id"]), have, overwrites or [])
        if problem is not None:
            kind = "/" if command.get("type", CHAT_INPUT) == CHAT_INPUT else "the context menu "
            raise CommandUnavailable(f"{kind}{command['name']} {problem}")

    def invoked_fields(
        self, channel: Json, user: Json, *, granted: int, installs: Collection[int]
    ) -> Json:
        """The interaction's fields that depend on where it was invoked (receiving-and-
        responding "Interaction Structure"): `context`; in a guild `member`, with its
        permissions in the channel "including overwrites", and `app_permissions`, the bot's
        there; in a DM `user` and no member, and the app permissions Discord gives there; and
        `authorizing_integration_owners` for the command's installation contexts `installs`."""
        context = interaction_context(channel, self.bot_dm_channels)
        owners = integration_owners(installs, context, channel, user)
        if context == GUILD:
            have = self.member_permissions(channel, user, granted=granted)
            return {
                "guild_id": channel["guild_id"],
                "member": self._member(user, permissions=str(have)),
                "guild_locale": "en-US",
                "app_permissions": str(self.bot_permissions(channel)),
                "authorizing_integration_owners": owners,
                "context": context,
            }
        in_bot_dm = context == BOT_DM
        return {
            "user": user,
            "app_permissions": str(
                BOT_DM_APP_PERMISSIONS if in_bot_dm else PRIVATE_APP_PERMISSIONS
            ),
            "authorizing_integration_owners": owners,
            "context": context,
        }
