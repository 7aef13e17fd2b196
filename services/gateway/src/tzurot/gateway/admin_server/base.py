"""What every admin servicer part shares: the Admin use-cases and who the request acts for."""

from __future__ import annotations

from typing import Any

from tzurot.gateway import convert
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.server import GatewayServicer
from tzurot.gateway.service import Gateway
from tzurot.gateway.wallet import Wallet
from tzurot.runtime.identity import current_caller


class AdminRpcs(GatewayServicer):
    """GatewayServicer plus the Admin use-cases; the capability parts subclass it."""

    def __init__(self, gateway: Gateway, wallet: Wallet, admin: Admin) -> None:
        super().__init__(gateway, wallet)
        self._admin = admin

    async def _who(self, request: Any, *, refuse_if_deleting: bool = True) -> Principal:
        """Who the request acts for (`Admin.principal`); `refuse_if_deleting` False only for
        the lookups of who a message addresses, so that it reaches Generate's refusal."""
        actor = (
            convert.actor(request.actor)
            if request.HasField("actor") and request.actor.user_id
            else None
        )
        return await self._admin.principal(
            actor, current_caller(), refuse_if_deleting=refuse_if_deleting
        )
