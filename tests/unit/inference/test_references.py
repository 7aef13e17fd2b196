"""References are deduplicated against history: by message id, then author+text in a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tzurot.inference.domain import HistoryTurn, Reference
from tzurot.inference.references import DEFAULT_WINDOW, not_in_history

AT = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)


def turn(
    content: str,
    *,
    author_id: str = "u-bob",
    author_name: str = "Bob",
    ids: tuple[str, ...] = (),
    at: datetime | None = AT,
    role: str = "user",
) -> HistoryTurn:
    return HistoryTurn(role, author_name, content, author_id, ids, at)  # type: ignore[arg-type]


def ref(
    content: str,
    *,
    message_id: str = "m-9",
    author_id: str = "u-bob",
    author_name: str = "Bob",
    at: datetime | None = AT,
) -> Reference:
    return Reference(message_id, author_name, content, 1, author_id, at)


def test_a_reference_whose_id_history_holds_is_dropped() -> None:
    history = [turn("something else entirely", ids=("m-1", "m-2"))]
    refs = [ref("quoted", message_id="m-2"), ref("other", message_id="m-3", at=None)]
    assert [r.message_id for r in not_in_history(refs, history)] == ["m-3"]


def test_same_author_and_text_within_the_window_is_dropped() -> None:
    history = [turn("the  plan is\nsimple", ids=("m-1",))]
    inside = ref("the plan is simple", at=AT + DEFAULT_WINDOW - timedelta(seconds=1))
    assert not_in_history([inside], history) == []


def test_same_text_outside_the_window_or_by_someone_else_is_kept() -> None:
    history = [turn("the plan is simple", ids=("m-1",))]
    later = ref("the plan is simple", message_id="m-5", at=AT + DEFAULT_WINDOW + timedelta(1))
    other = ref("the plan is simple", message_id="m-6", author_id="u-eve", author_name="Eve")
    changed = ref("the plan is not simple", message_id="m-7")
    undated = ref("the plan is simple", message_id="m-8", at=None)
    kept = not_in_history([later, other, changed, undated], history)
    assert [r.message_id for r in kept] == ["m-5", "m-6", "m-7", "m-8"]


def test_an_answer_posted_by_a_webhook_matches_its_personality_by_name() -> None:
    answer = turn(
        "I remember.", author_id="lilith", author_name="Lilith", role="assistant", ids=("a-1",)
    )
    reposted = ref(
        "I remember.",
        message_id="a-2",
        author_id="webhook-7",
        author_name="lilith",
        at=AT + timedelta(seconds=3),
    )
    assert not_in_history([reposted], [answer]) == []
