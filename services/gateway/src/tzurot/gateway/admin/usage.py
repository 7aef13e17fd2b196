"""Usage: a user's (or, for superusers, everyone's) requests and tokens over a period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tzurot.gateway.admin.base import AdminBase, Principal
from tzurot.gateway.domain import UsageTotal
from tzurot.runtime.errors import InvalidArgument, PermissionDenied

_PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}


class UsageAdmin(AdminBase):
    async def usage(
        self, who: Principal, period: str, *, all_users: bool, now: datetime | None = None
    ) -> tuple[list[UsageTotal], datetime]:
        if all_users and not who.superuser:
            raise PermissionDenied("only superusers may see every user's usage")
        if period not in _PERIODS:
            raise InvalidArgument("period", "period is DAY, WEEK or MONTH")
        since = (now or datetime.now(UTC)) - _PERIODS[period]
        user_id = None if all_users else who.require_user().id
        return await self._db.usage_totals(since, user_id), since
