"""Job RPCs for operators."""

from __future__ import annotations

from tzurot.gateway import convert
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.runtime.errors import PermissionDenied
from tzurot.v1 import gateway_pb2 as gw


class JobRpcs(AdminRpcs):
    async def RetryJob(self, request: gw.RetryJobRequest, context: Context) -> gw.RetryJobResponse:
        if not (await self._who(request)).superuser:
            raise PermissionDenied("only operators may retry a job", reason="SUPERUSER_REQUIRED")
        job = await self._gateway.retry_job(request.job_id)
        return gw.RetryJobResponse(job=convert.job(job))
