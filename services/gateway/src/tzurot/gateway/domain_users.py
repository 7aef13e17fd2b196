"""Who a request is for: the human the client asserts, the stored user, and their persona."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Actor:
    """The human a request is for, as asserted by the calling client."""

    platform_user_id: str
    display_name: str


@dataclass(frozen=True)
class User:
    id: str
    platform_user_id: str
    display_name: str
    timezone: str
    superuser: bool
    nsfw_verified: bool
    created_at: datetime
    # They asked for their data to be deleted and it is under way (admin/deletions.py):
    # nothing of theirs is served until the row is gone.
    deleting: bool = False


@dataclass(frozen=True)
class Persona:
    """A user's identity toward personalities."""

    name: str = ""
    preferred_name: str = ""
    pronouns: str = ""
    description: str = ""
