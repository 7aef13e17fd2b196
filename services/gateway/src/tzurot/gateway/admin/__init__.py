"""The admin API's use-cases, one module per capability:

- personalities.py: personalities, aliases, mentions of them
- users.py: time zone, NSFW verification, personas
- configs.py: LLM configs and the settings cascade
- models.py: which model answers (a user's choice per personality, their default, a channel's)
- personal_aliases.py: aliases only their user uses
- channels.py: channel activation and moderation (the denylist)
- memory.py: history and long-term memory on the user's behalf
- privacy.py: a user's data export and deletion
- export_archive.py: the export's format: its files, manifests, READMEs and parts
- deletions.py: deletions that finish by themselves (recorded first, a sweep finishes them)
- usage.py: usage totals
- avatars.py: avatar images kept by the project, served by the edge
- cards.py: character card import and export
- lorebooks.py: lorebooks and where they are attached
- shapes.py: the shapes.inc backup import (operators)
- voice.py: a personality's voice, users' voice choices, speaking answers, voice cloning

Authorization by principal (base.py): a user acts on their own things, superusers on
everything, and an internal identity listed as an operator (e.g. the CLI) may act without an
actor, as superuser.
"""

from __future__ import annotations

from tzurot.gateway.admin.base import Principal, SettingTarget
from tzurot.gateway.admin.cards import CardAdmin
from tzurot.gateway.admin.channels import ChannelAdmin, ModerationAdmin
from tzurot.gateway.admin.configs import ConfigAdmin
from tzurot.gateway.admin.lorebooks import LorebookAdmin
from tzurot.gateway.admin.memory import MemoryAdmin
from tzurot.gateway.admin.models import ModelAdmin
from tzurot.gateway.admin.personal_aliases import PersonalAliasAdmin
from tzurot.gateway.admin.personalities import PERSONALITY_PATHS, PersonalityAdmin
from tzurot.gateway.admin.privacy import PrivacyAdmin
from tzurot.gateway.admin.shapes import ShapesAdmin
from tzurot.gateway.admin.skills import SkillAdmin
from tzurot.gateway.admin.usage import UsageAdmin
from tzurot.gateway.admin.users import UserAdmin
from tzurot.gateway.admin.voice import VoiceAdmin

__all__ = ["PERSONALITY_PATHS", "Admin", "Principal", "SettingTarget"]


class Admin(
    PersonalityAdmin,
    UserAdmin,
    ConfigAdmin,
    ModelAdmin,
    PersonalAliasAdmin,
    ChannelAdmin,
    ModerationAdmin,
    MemoryAdmin,
    PrivacyAdmin,
    UsageAdmin,
    CardAdmin,
    LorebookAdmin,
    ShapesAdmin,
    SkillAdmin,
    VoiceAdmin,
):
    """Every admin use-case (the capability classes share AdminBase's constructor; avatars
    come with CardAdmin and ShapesAdmin, which serve imported pictures)."""
