"""Skill RPCs."""

from __future__ import annotations

from tzurot.gateway import convert
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


class SkillRpcs(AdminRpcs):
    async def ListAvailableSkills(
        self, request: gw.ListAvailableSkillsRequest, context: Context
    ) -> gw.ListAvailableSkillsResponse:
        skills = await self._admin.available_skills()
        return gw.ListAvailableSkillsResponse(skills=[convert.skill_info(s) for s in skills])
