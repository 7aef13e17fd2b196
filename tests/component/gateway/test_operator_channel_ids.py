"""Over real mTLS gRPC on real Postgres: the operator's channel commands read a personality's
id as every other lookup does (review 253, finding 3), and a name spelled as no personality's
id is not found."""

from __future__ import annotations

import grpc
import pytest

from tzurot.v1 import gateway_pb2 as gw

from . import test_grpc as g

pytestmark = pytest.mark.component

mesh = g.mesh
connect = g.connect
Connect = g.Connect

UNKNOWN_UUID = "00000000-0000-0000-0000-000000000000"


async def test_the_operator_activates_a_personality_by_its_id(connect: Connect) -> None:
    cli = connect("cli")
    lilith = (await g.import_seed(cli, "lilith")).personality
    on = await cli.ActivateChannel(
        gw.ActivateChannelRequest(location=g.WHERE, personality=lilith.id)
    )
    assert (on.activation.personality.id, on.activation.personality.slug) == (lilith.id, "lilith")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await cli.ActivateChannel(
            gw.ActivateChannelRequest(location=g.WHERE, personality=UNKNOWN_UUID)
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
