"""Uploaded cards and lorebooks with text Postgres cannot store, over real mTLS gRPC on real
Postgres: INVALID_ARGUMENT naming the field (they failed inside a statement as INTERNAL)."""

from __future__ import annotations

import json

import grpc
import pytest

from tzurot.runtime.errors import InvalidArgument, from_rpc_error
from tzurot.v1 import gateway_pb2 as gw

from . import test_grpc as g

pytestmark = pytest.mark.component

mesh = g.mesh
connect = g.connect
Connect = g.Connect


def card(**data: str) -> bytes:
    fields = {"name": "Grigori", "description": "A priest.", **data}
    return json.dumps({"spec": "chara_card_v3", "spec_version": "3.0", "data": fields}).encode()


@pytest.mark.parametrize(
    ("document", "field", "reason"),
    [
        (card(description="a\x00b"), "data.description", "NUL_CHARACTER"),
        (card(first_mes="hi\x00"), "data.first_mes", "NUL_CHARACTER"),
        (card(description="x\ud800"), "data.description", "INVALID_TEXT"),
    ],
)
async def test_an_uploaded_card_with_unstorable_text_is_invalid_argument(
    connect: Connect, document: bytes, field: str, reason: str
) -> None:
    error = await g.rpc_error(
        connect("bot").ImportPersonality(
            gw.ImportPersonalityRequest(
                actor=g.ACTOR, format=gw.IMPORT_FORMAT_CHARACTER_CARD, document=document
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    typed = from_rpc_error(error)
    assert isinstance(typed, InvalidArgument)
    assert (typed.field, typed.reason) == (field, reason)


async def test_an_uploaded_lorebook_with_nul_is_invalid_argument(connect: Connect) -> None:
    document = json.dumps({"entries": {"0": {"key": ["a"], "content": "x\x00"}}}).encode()
    error = await g.rpc_error(
        connect("bot").ImportLorebook(
            gw.ImportLorebookRequest(actor=g.ACTOR, document=document, name="Ravenholm")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    typed = from_rpc_error(error)
    assert isinstance(typed, InvalidArgument)
    assert typed.field == 'entries["0"].content'
