"""A 🔄's prompt: the exchange the new answer replaces is still in history (the gateway removes
it only once the new answer is delivered), and the prompt leaves it out, still with as many
turns as any other prompt."""

from dataclasses import replace

from tests.unit.inference.test_reply_context import FakeContext, finish, make
from tests.unit.inference.test_service import REQUEST, FakeHistory
from tzurot.inference import convert
from tzurot.inference.domain import HistoryTurn, ReplyContext
from tzurot.inference.reply_context import MAX_HISTORY_MESSAGES, REPLACED_TURNS, without_replaced
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf

OLDER = [
    HistoryTurn("user", "Ann", "what is a moth", job_id="job-0"),
    HistoryTurn("assistant", "Lilith", "A night butterfly.", job_id="job-0"),
    HistoryTurn("user", "Ann", "and a lamp", job_id="job-1"),
    HistoryTurn("assistant", "Lilith", "Its undoing.", job_id="job-1"),
]
REPLACED = [
    HistoryTurn("user", "Ann", "tell me a riddle", job_id="job-old"),
    HistoryTurn("assistant", "Lilith", "FIRST TAKE", job_id="job-old"),
]
REGENERATION = replace(
    REQUEST, content="tell me a riddle", max_history_messages=2, replaces_job_id="job-old"
)


async def test_the_replaced_exchange_is_read_and_left_out_of_the_prompt() -> None:
    context = FakeContext(ReplyContext([*OLDER, *REPLACED], []))
    inference, model = make(context)
    finished = await finish(inference.generate_reply(REGENERATION))
    assert context.asked[0].history_limit == 2 + REPLACED_TURNS  # the old exchange on top
    prompt = str(model.calls[0]["messages"])
    assert "FIRST TAKE" not in prompt
    assert "Its undoing." in prompt
    assert "A night butterfly." not in prompt  # beyond the prompt's two turns
    assert finished.report.history_turns == 2


async def test_history_read_on_its_own_leaves_it_out_too() -> None:
    """A message without text (a scheduled turn's, an attachment's) reads history apart."""
    history = FakeHistory([*OLDER, *REPLACED])
    inference, model = make(FakeContext(ReplyContext([], [])), history)
    await finish(inference.generate_reply(replace(REGENERATION, content=" ")))
    assert history.calls == [("chan-1", "p-1", 2 + REPLACED_TURNS)]
    prompt = str(model.calls[0]["messages"])
    assert "FIRST TAKE" not in prompt
    assert "Its undoing." in prompt


async def test_an_answer_replacing_nothing_reads_as_before() -> None:
    context = FakeContext(ReplyContext([*OLDER, *REPLACED], []))
    inference, model = make(context)
    await finish(inference.generate_reply(replace(REGENERATION, replaces_job_id="")))
    assert context.asked[0].history_limit == 2
    assert "FIRST TAKE" in str(model.calls[0]["messages"])


async def test_the_newest_turns_are_kept_and_memory_is_never_asked_past_its_cap() -> None:
    turns = [*OLDER, *REPLACED]
    assert without_replaced(turns, REGENERATION, 3) == OLDER[-3:]
    assert without_replaced(turns, replace(REGENERATION, replaces_job_id=""), 3) == turns
    context = FakeContext(ReplyContext(turns, []))
    inference, _ = make(context)
    at_cap = replace(REGENERATION, max_history_messages=MAX_HISTORY_MESSAGES)
    await finish(inference.generate_reply(at_cap))
    assert context.asked[0].history_limit == MAX_HISTORY_MESSAGES


def test_the_request_names_the_replaced_job_and_each_turn_its_own() -> None:
    request = convert.reply_request(inf.GenerateReplyRequest(replaces_job_id="job-old"))
    turn = convert.history_turn(common.Turn(role=common.ROLE_USER, job_id="job-old"))
    assert request.replaces_job_id == "job-old"
    assert turn is not None
    assert turn.job_id == "job-old"
