"""The admin RPCs of GatewayService: thin handlers over `Admin` (admin/), one module per
capability (the same names as admin/ and store/)."""

from __future__ import annotations

from tzurot.gateway.admin_server.avatars import AvatarRpcs
from tzurot.gateway.admin_server.cards import CardRpcs, LorebookRpcs, ShapesRpcs
from tzurot.gateway.admin_server.channels import ChannelRpcs
from tzurot.gateway.admin_server.configs import ConfigRpcs
from tzurot.gateway.admin_server.jobs import JobRpcs
from tzurot.gateway.admin_server.memory import MemoryRpcs
from tzurot.gateway.admin_server.models import ModelRpcs
from tzurot.gateway.admin_server.personal_aliases import PersonalAliasRpcs
from tzurot.gateway.admin_server.personalities import PersonalityRpcs
from tzurot.gateway.admin_server.privacy import PrivacyRpcs
from tzurot.gateway.admin_server.skills import SkillRpcs
from tzurot.gateway.admin_server.usage import UsageRpcs
from tzurot.gateway.admin_server.users import UserRpcs
from tzurot.gateway.admin_server.voice import VoiceRpcs

__all__ = ["GatewayAdminServicer"]


class GatewayAdminServicer(
    PersonalityRpcs,
    UserRpcs,
    ConfigRpcs,
    ModelRpcs,
    PersonalAliasRpcs,
    ChannelRpcs,
    MemoryRpcs,
    PrivacyRpcs,
    UsageRpcs,
    JobRpcs,
    AvatarRpcs,
    CardRpcs,
    LorebookRpcs,
    ShapesRpcs,
    SkillRpcs,
    VoiceRpcs,
):
    """GatewayService: conversation, personalities and wallet (GatewayServicer) plus admin."""
