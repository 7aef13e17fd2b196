"""Usage RPCs."""

from __future__ import annotations

from tzurot.gateway import admin_convert as ac
from tzurot.gateway import convert
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


class UsageRpcs(AdminRpcs):
    async def GetUsage(self, request: gw.GetUsageRequest, context: Context) -> gw.GetUsageResponse:
        totals, since = await self._admin.usage(
            await self._who(request), ac.usage_period(request.period), all_users=request.all_users
        )
        return gw.GetUsageResponse(
            totals=[ac.usage_total(u, with_user=request.all_users) for u in totals],
            since=convert.timestamp(since),
        )
