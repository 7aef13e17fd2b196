"""Inference's reply events as this gateway reads them, across versions of the two."""

from tzurot.gateway import convert
from tzurot.v1 import inference_pb2 as inf


def test_an_event_this_gateway_does_not_know_is_skipped_not_read_as_the_answer() -> None:
    """A newer inference's event arrives as an unknown field: no oneof member is set. Read as
    `finished` (the fallthrough of reply_event) it would end the job with an empty answer."""
    unknown = inf.GenerateReplyResponse()
    unknown.ParseFromString(b"\x7a\x02\x08\x01")  # field 15, a message: unknown to this proto
    assert not convert.known_reply_event(unknown)
    finished = inf.GenerateReplyResponse(finished=inf.ReplyFinished(content="Hi."))
    assert convert.known_reply_event(finished)
    spent = inf.GenerateReplyResponse(usage_spent=inf.UsageSpent(failed=True))
    assert convert.known_reply_event(spent)
