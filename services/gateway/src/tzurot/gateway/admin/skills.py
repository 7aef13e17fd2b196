"""Skills: what the operator offers (inference's ListSkills), and checking a personality's
choice against it, so a typo is an error rather than a skill silently missing."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tzurot.gateway.admin.base import AdminBase
from tzurot.gateway.domain import SkillInfo
from tzurot.runtime.errors import InvalidArgument, Unavailable

MAX_SKILLS = 16
_SKILL_NAME = re.compile(r"[a-z0-9_]{1,64}")


class SkillAdmin(AdminBase):
    async def available_skills(self) -> list[SkillInfo]:
        if self._skills is None:
            raise Unavailable("skills are not available here", reason="SKILLS_UNAVAILABLE")
        return await self._skills.list_skills()

    async def _checked_skills(self, names: Sequence[str]) -> list[str]:
        """The personality's skills, once each, in order; each one inference offers."""
        chosen = list(dict.fromkeys(name.strip() for name in names))
        if len(chosen) > MAX_SKILLS:
            raise InvalidArgument("personality.skills", f"at most {MAX_SKILLS} skills")
        for name in chosen:
            if not _SKILL_NAME.fullmatch(name):
                raise InvalidArgument(
                    "personality.skills",
                    f"{name[:64]!r} is not a skill name",
                    reason="UNKNOWN_SKILL",
                )
        if not chosen:
            return []
        offered = {skill.name for skill in await self.available_skills()}
        unknown = [name for name in chosen if name not in offered]
        if unknown:
            raise InvalidArgument(
                "personality.skills",
                f"no skill named {', '.join(unknown)}; available: "
                f"{', '.join(sorted(offered)) or 'none'}",
                reason="UNKNOWN_SKILL",
            )
        return chosen
