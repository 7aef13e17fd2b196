"""`tzurot chat --show-reasoning` asks the gateway to show the reasoning, never to keep it:
it sends GenerateRequest.show_reasoning, not include_reasoning (which an older gateway also
read as "keep it for Inspect", where superusers may read it)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tzurot.cli.chat import stream_answer
from tzurot.cli.gateway_client import CliUser, GatewayClient
from tzurot.cli.settings import CliSettings
from tzurot.runtime.tls import generate_dev_pki
from tzurot.v1 import gateway_pb2 as gw


class Recording:
    """The gateway stub: notes each GenerateRequest, answers with a reasoning."""

    def __init__(self) -> None:
        self.requests: list[gw.GenerateRequest] = []

    def Generate(self, request: gw.GenerateRequest, **_: Any) -> Any:
        self.requests.append(request)

        async def stream() -> Any:
            yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-1"))
            yield gw.GenerateResponse(
                finished=gw.GenerationFinished(content="Yes.", reasoning="Because.")
            )

        return stream()

    def ConfirmDelivery(self, *_: Any, **__: Any) -> Any:
        async def reply() -> gw.ConfirmDeliveryResponse:
            return gw.ConfirmDeliveryResponse()

        return reply()


@pytest.mark.parametrize("shown", [True, False])
async def test_show_reasoning_sends_only_the_show_field(tmp_path: Path, shown: bool) -> None:
    generate_dev_pki(tmp_path / "pki", ["gateway", "cli"])
    stub = Recording()
    out = io.StringIO()
    async with GatewayClient(CliSettings(cli_tls_dir=tmp_path / "pki" / "cli")) as client:
        client.stub = stub  # type: ignore[assignment]  # a recorder, not a channel's stub
        await stream_answer(
            client, CliUser("dana"), "lilith", "hi", out, files_dir=tmp_path, show_reasoning=shown
        )
    [request] = stub.requests
    assert (request.show_reasoning, request.include_reasoning) == (shown, False)
