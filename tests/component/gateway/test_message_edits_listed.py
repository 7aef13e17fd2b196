"""EditMessage over real mTLS gRPC on real Postgres, as each bot sends it: an older bot lists
none of the message's files and leaves `attachments_listed` unset, so the gateway cannot tell
which file the edit took off and keeps every reading of the turn; a bot that lists them
(`attachments_listed`) takes out the reading of a file no longer shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tzurot.gateway.admin import Admin
from tzurot.gateway.admin_server import GatewayAdminServicer
from tzurot.gateway.service import Gateway
from tzurot.gateway.wallet import Wallet
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.server import ServiceRegistration, create_server
from tzurot.testing.channels import channels_to
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

from .conftest import ALICE, FakeInference, FakeMemory
from .test_message_edits import CAT, SEEN, delivered, read_by_a_helper, user_turns

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub = gw_grpc.GatewayServiceAsyncStub

pytestmark = pytest.mark.component

DOG = "https://cdn.example/dog.png"
AS_ALICE = common.Actor(user_id=ALICE.platform_user_id, display_name=ALICE.display_name)


@pytest.fixture
async def bot(pki: Path, gateway: Gateway, wallet: Wallet, admin: Admin) -> AsyncIterator[Stub]:
    """The gateway's admin servicer over the component fakes, dialled as the bot."""
    # Abstract: the group RPCs (GatewayGroupServicer, what app.py serves) are not called here.
    servicer = GatewayAdminServicer(gateway, wallet, admin)  # type: ignore[abstract]
    running = await create_server(
        service="gateway",
        settings=ServiceSettings(listen="127.0.0.1:0", tls_dir=pki / "gateway"),
        registrations=[
            ServiceRegistration(
                "tzurot.v1.GatewayService",
                lambda s: gw_grpc.add_GatewayServiceServicer_to_server(servicer, s),
            )
        ],
        default_allowed=frozenset({"bot"}),
    )
    await running.start()
    try:
        async with channels_to("gateway", pki, default_timeout=10.0) as open_channel:
            yield gw_grpc.GatewayServiceStub(open_channel(running.port, "bot"))
    finally:
        await running.stop(0)


@pytest.mark.usefixtures("lilith")
@pytest.mark.parametrize("urls", [[], [DOG]], ids=["none", "another file's, unlisted"])
async def test_an_older_bot_that_lists_no_files_keeps_every_reading(
    bot: Stub, gateway: Gateway, inference: FakeInference, memory: FakeMemory, urls: list[str]
) -> None:
    """Whatever `attachment_urls` holds, unlisted it says nothing of the files: the reading
    made of the image (by a helper model: the job knows it is the image's) stays."""
    inference.script = read_by_a_helper()
    await delivered(gateway, "my cat is called Tom")

    await bot.EditMessage(
        gw.EditMessageRequest(
            actor=AS_ALICE, message_id="msg-1", content="I have no cat", attachment_urls=urls
        )
    )
    assert user_turns(memory) == [f"I have no cat\n{SEEN}"]


@pytest.mark.usefixtures("lilith")
async def test_a_bot_that_lists_the_files_drops_the_reading_of_one_taken_off(
    bot: Stub, gateway: Gateway, inference: FakeInference, memory: FakeMemory
) -> None:
    inference.script = read_by_a_helper()
    await delivered(gateway, "my cat is called Tom")
    edit = gw.EditMessageRequest(
        actor=AS_ALICE, message_id="msg-1", content="my cat is Felix", attachments_listed=True
    )

    edit.attachment_urls.append(CAT.url)
    await bot.EditMessage(edit)
    assert user_turns(memory) == [f"my cat is Felix\n{SEEN}"]
    edit.content = "I have no cat"
    edit.ClearField("attachment_urls")
    await bot.EditMessage(edit)
    assert user_turns(memory) == ["I have no cat"]
