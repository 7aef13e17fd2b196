"""A history row becomes a StoredTurn field by field (store.stored_turn, stored_turns)."""

import uuid
from datetime import UTC, datetime

import pytest

from tzurot.memory.domain import Attachment, Role, StoredTurn
from tzurot.memory.store import stored_turn, stored_turns

_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
_AT = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def _row(role: str, attachments: list[dict[str, object]]) -> dict[str, object]:
    return {
        "id": _ID,
        "job_id": "job",
        "position": 2,
        "channel_id": "chan",
        "personality_id": "persona",
        "user_id": "u",
        "role": role,
        "author_id": "a",
        "author_name": "Alice",
        "content": "hello",
        "message_ids": ["1", "2"],
        "attachments": attachments,
        "created_at": _AT,
    }


def _golden(role: Role, attachments: tuple[Attachment, ...]) -> StoredTurn:
    return StoredTurn(
        id="12345678-1234-5678-1234-567812345678",
        job_id="job",
        position=2,
        channel_id="chan",
        personality_id="persona",
        user_id="u",
        role=role,
        author_id="a",
        author_name="Alice",
        content="hello",
        message_ids=("1", "2"),
        attachments=attachments,
        created_at=_AT,
    )


@pytest.mark.parametrize("role", list(Role))
def test_a_row_without_attachments(role: Role) -> None:
    turn = stored_turn(_row(role.value, []))
    assert turn == _golden(role, ())
    assert type(turn.role) is Role
    assert turn.attachments == ()


def test_attachments_fill_their_defaults() -> None:
    rows = [
        _row(
            "user",
            [
                {"url": "u1", "content_type": "image/png", "filename": "f", "size_bytes": "7"},
                {"url": "u2", "description": "a cat"},
                {},
            ],
        ),
        _row("assistant", []),
    ]
    assert stored_turns(rows) == [
        _golden(
            Role.USER,
            (
                Attachment(url="u1", content_type="image/png", filename="f", size_bytes=7),
                Attachment(url="u2", description="a cat"),
                Attachment(url=""),
            ),
        ),
        _golden(Role.ASSISTANT, ()),
    ]


def test_an_unknown_role_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match="'nobody' is not a valid Role"):
        stored_turn(_row("nobody", []))
