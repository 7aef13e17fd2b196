"""Mentions as Discord takes them: `allowed_mentions` validated, and who a message pings.

From discord-api-docs resources/message.mdx "Allowed Mentions Object" (L710-830):
- `parse` holds "allowed mention types": "roles", "users", "everyone" (L721-727); anything
  else is an invalid form body (BASE_TYPE_CHOICES at `parse.n`).
- `roles` and `users`: "max 100" ids each (L753-754; BASE_TYPE_MAX_LENGTH).
- "the `parse` field is mutually exclusive with the other fields" of its kind: `parse` with
  "users" and a non-empty `users` is refused (L809-820), "Passing a falsy value such as `null`
  or an empty array into the `users` field does not trigger a validation error" (L783).
- Defaults when the field is absent (L730-748): regular messages parse users, roles and
  everyone; interactions and webhooks users only.
- `replied_user`: "For replies, whether to mention the author of the message being replied
  to, defaults to false" (L755). The defaults above name no `replied_user`, so without it no
  reply pings the author: the fake pings the replied-to author only when it is true.
- Mentions count only when they are in the content (no "phantom" pings, L712); roles only
  if mentionable or with Mention Everyone, @everyone/@here only with Mention Everyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tzurot.testing.fake_discord.wire import Json

MENTION_TYPES = ("roles", "users", "everyone")
MAX_MENTION_IDS = 100
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE = re.compile(r"@(everyone|here)\b")

Problem = tuple[tuple[str | int, ...], str, str]
"""A refused field of `allowed_mentions`: its path under it, Discord's code and message."""


@dataclass(frozen=True)
class Pings:
    """Who Discord would notify for a message: users (the replied-to author among them, when
    `replied_user` asks), roles, and @everyone/@here."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    everyone: bool = False

    def __bool__(self) -> bool:
        return bool(self.users or self.roles or self.everyone)


def allowed_mentions_problems(allowed: object) -> list[Problem]:
    """What Discord refuses in an `allowed_mentions` (none when it is absent)."""
    if not isinstance(allowed, Mapping):
        return []
    problems: list[Problem] = []
    parse = allowed.get("parse") or []
    for n, kind in enumerate(parse if isinstance(parse, list) else []):
        if kind not in MENTION_TYPES:
            choices = f"Value must be one of {MENTION_TYPES}."
            problems.append((("parse", n), "BASE_TYPE_CHOICES", choices))
    for kind in ("users", "roles"):
        ids = allowed.get(kind) or []
        if isinstance(ids, list) and len(ids) > MAX_MENTION_IDS:
            too_many = f"Must be {MAX_MENTION_IDS} or fewer in length."
            problems.append(((kind,), "BASE_TYPE_MAX_LENGTH", too_many))
        if isinstance(parse, list) and kind in parse and ids:
            exclusive = f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.'
            problems.append(((), "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE", exclusive))
    return problems


def allowed_mentions_error(allowed: object) -> Json | None:
    """Discord's 400 body (50035, at `allowed_mentions`) for a refused one, else None."""
    tree: Json = {}
    for path, code, message in allowed_mentions_problems(allowed):
        node = tree.setdefault("allowed_mentions", {})
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    if not tree:
        return None
    return {"code": 50035, "message": "Invalid Form Body", "errors": tree}


def pings(
    content: str,
    allowed: Mapping[str, Any] | None,
    *,
    default_parse: Iterable[str] = ("users",),
    mentionable_roles: Iterable[int] = (),
    can_mention_everyone: bool = False,
    replied_to: int | None = None,
) -> Pings:
    """Who gets notified. `allowed` None means Discord's default for the route (webhooks and
    interactions parse users only); mentions count only when they are in the content;
    `replied_to` (the author of the message a reply answers, if a user) only by
    `replied_user`."""
    if allowed is None:
        allowed = {"parse": list(default_parse)}
    parse = set(allowed.get("parse") or [])
    named_users = {int(u) for u in allowed.get("users") or []}
    named_roles = {int(r) for r in allowed.get("roles") or []}
    in_users = {int(m) for m in _USER_MENTION.findall(content)}
    in_roles = {int(m) for m in _ROLE_MENTION.findall(content)}
    users = in_users if "users" in parse else in_users & named_users
    if replied_to is not None and allowed.get("replied_user") is True:
        users |= {replied_to}
    roles = in_roles if "roles" in parse else in_roles & named_roles
    if not can_mention_everyone:
        roles &= set(mentionable_roles)
    everyone = "everyone" in parse and bool(_EVERYONE.search(content)) and can_mention_everyone
    return Pings(frozenset(users), frozenset(roles), everyone)
