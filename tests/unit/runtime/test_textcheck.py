"""The NUL check names the offending field, nested, repeated and in maps."""

import pytest

from tzurot.runtime.errors import InvalidArgument
from tzurot.runtime.textcheck import check_storable, unstorable_field
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem


def test_clean_requests_pass() -> None:
    req = gw.GenerateRequest(content="hello 🌙 ünïcode\t\n", personality="Echo")
    assert unstorable_field(req) is None
    check_storable(req)


@pytest.mark.parametrize(
    ("request_", "path"),
    [
        (gw.GenerateRequest(content="a\x00"), "content"),
        (gw.GenerateRequest(actor=common.Actor(display_name="\x00")), "actor.display_name"),
        (gw.GenerateRequest(message_ids=["1", "2\x00"]), "message_ids[1]"),
    ],
)
def test_a_nul_is_found_by_its_path(request_: gw.GenerateRequest, path: str) -> None:
    assert unstorable_field(request_) == path
    with pytest.raises(InvalidArgument) as caught:
        check_storable(request_)
    assert caught.value.field == path


def test_nested_repeated_messages_are_walked() -> None:
    req = gw.GenerateRequest()
    req.references.add(content="fine")
    req.references.add(content="bad\x00")
    assert unstorable_field(req) == "references[1].content"


def test_bytes_may_hold_nul() -> None:
    req = gw.ImportPersonalityRequest(document=b"\x00\x01")
    assert unstorable_field(req) is None


@pytest.mark.parametrize(("seconds", "nanos"), [(2**62, 0), (-(2**63), 0), (0, -1), (0, 2**31 - 1)])
def test_an_impossible_timestamp_is_invalid_argument(seconds: int, nanos: int) -> None:
    req = mem.GetHistoryRequest(personality_id="p")
    req.before.seconds = seconds
    req.before.nanos = nanos
    with pytest.raises(InvalidArgument) as caught:
        check_storable(req)
    assert caught.value.field == "before"


def test_a_real_timestamp_passes() -> None:
    req = mem.GetHistoryRequest(personality_id="p")
    req.before.seconds = 1_800_000_000
    check_storable(req)


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
def test_a_json_value_that_is_not_a_finite_number_is_invalid_argument(number: float) -> None:
    """Found by the fuzz suite: CreateLlmConfig with advanced_parameters {"": inf} was
    INTERNAL (protobuf cannot turn Infinity into JSON)."""
    req = gw.CreateLlmConfigRequest()
    req.config.advanced_parameters.fields["top_k"].number_value = number
    with pytest.raises(InvalidArgument) as caught:
        check_storable(req)
    assert caught.value.field == "config.advanced_parameters.fields['top_k']"
    assert caught.value.reason == "INVALID_NUMBER"


@pytest.mark.parametrize("text", [None, "a\x00b"])
def test_a_bad_json_value_deep_in_lists_is_found(text: str | None) -> None:
    """A NaN or a NUL 40 lists deep (80 message levels, within protobuf's parse limit of
    100) is found; the old limit of 32 levels let it through to INTERNAL."""
    req = gw.CreateLlmConfigRequest()
    value = req.config.advanced_parameters.fields["stop"]
    for _ in range(40):
        value = value.list_value.values.add()
    if text is None:
        value.number_value = float("nan")
    else:
        value.string_value = text
    parsed = gw.CreateLlmConfigRequest.FromString(req.SerializeToString())
    with pytest.raises(InvalidArgument) as caught:
        check_storable(parsed)
    assert caught.value.field.startswith("config.advanced_parameters.fields['stop'].list_value")


def test_finite_json_numbers_pass() -> None:
    req = gw.CreateLlmConfigRequest()
    req.config.advanced_parameters.fields["top_k"].number_value = 40
    check_storable(req)


@pytest.mark.parametrize(
    ("request_", "path"),
    [
        (gw.ImportShapesMemoriesRequest(user_map={"a\x00": "1"}), "user_map"),
        (gw.ImportShapesMemoriesRequest(user_map={"uuid": "1\x00"}), "user_map['uuid']"),
        (gw.ImportShapesMemoriesRequest(user_map={"k" * 65: "\x00"}), "user_map[…]"),
        (
            gw.ImportShapesMemoriesRequest(
                actor=common.Actor(display_name="fine"), personality="ok", user_map={"u": "\x00"}
            ),
            "user_map['u']",
        ),
    ],
)
def test_map_keys_and_values_are_named(request_: gw.ImportShapesMemoriesRequest, path: str) -> None:
    assert unstorable_field(request_) == path
    assert unstorable_field(request_, "outer.") == f"outer.{path}"


def test_the_first_offending_field_is_named_with_its_full_path() -> None:
    req = gw.GenerateRequest(content="fine", message_ids=["1", "2"])
    req.references.add(content="ok")
    req.references.add(content="ok", author_name="\x00")
    req.actor.display_name = "\x00"  # field 1: walked before references (field 7)
    assert unstorable_field(req) == "actor.display_name"
    req.actor.display_name = "ok"
    assert unstorable_field(req) == "references[1].author_name"


def test_a_bad_timestamp_in_a_nested_message_is_named() -> None:
    req = mem.StoreExchangeRequest(job_id="j")
    req.occurred_at.seconds = 2**62
    with pytest.raises(InvalidArgument) as caught:
        check_storable(req)
    assert caught.value.field == "occurred_at"
    assert caught.value.reason == "INVALID_TIMESTAMP"


def test_numbers_and_bytes_are_not_text() -> None:
    req = mem.GetHistoryRequest(channel_id="c", personality_id="p", limit=5)
    assert unstorable_field(req) is None
    req.channel_id = "c\x00"
    assert unstorable_field(req) == "channel_id"
