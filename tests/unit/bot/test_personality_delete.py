"""What `/personality delete` says: the confirmation names what goes and what stays, and a
failure says whether anything was deleted (and how to finish when maybe part of it was)."""

import grpc
import pytest

from tzurot.bot.commands.common import confirmed
from tzurot.bot.commands.personality import PersonalityCommands
from tzurot.bot.commands.personality_delete import (
    deleted_text,
    deletion_failed_text,
    not_deleted_text,
    warning_text,
)
from tzurot.runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TzurotError,
    Unavailable,
)
from tzurot.v1 import common_pb2 as common

WREN = common.Personality(slug="wren", display_name="Wren")
HERON = common.Personality(slug="heron", display_name="Heron", public=True)


def test_only_the_word_delete_confirms() -> None:
    assert confirmed("DELETE")
    assert not any(confirmed(text) for text in ("", "delete", "yes", "DELETE ", "Wren"))


def test_the_warning_says_what_goes_that_it_is_for_good_and_how_to_confirm() -> None:
    text = warning_text(WREN)
    assert text.startswith("**Nothing deleted yet.**")
    assert "**Wren** (`wren`)" in text
    assert "cannot be undone" in text
    for lost in ("history", "long-term memories", "shared lore", "voice", "aliases", "avatar"):
        assert lost in text, lost
    assert "lorebooks" in text  # what stays is said too
    assert "`confirm: DELETE`" in text
    assert "public" not in text
    assert len(text) <= 2000


def test_the_warning_says_a_cloned_voice_leaves_the_elevenlabs_account_it_is_in() -> None:
    text = warning_text(WREN)
    assert (
        "a voice cloned for it: deleted from the ElevenLabs account it was cloned into, when "
        "that account's key can (otherwise it stays there)"
    ) in text
    assert "Kept: lorebooks (one that came with its card stays its owner's, unlinked)." in text


def test_a_public_one_warns_that_others_lose_it_too() -> None:
    text = warning_text(HERON)
    assert "It is **public**: others lose it too" in text.splitlines()[1]


def test_deleted_names_it() -> None:
    assert deleted_text(WREN).startswith("Deleted **Wren** (`wren`) for good")


def test_someone_elses_reads_as_not_yours_and_nothing_deleted() -> None:
    err = PermissionDenied("only the owner of 'heron' may change it", reason="NOT_OWNER")
    assert deletion_failed_text(err, HERON) == (
        "Nothing deleted: **Heron** is not yours; only its owner or a superuser can."
    )


def test_not_found_is_the_gateways_words_and_nothing_deleted() -> None:
    err = NotFound("no personality named 'Wren'", reason="PERSONALITY_NOT_FOUND")
    assert not_deleted_text(err, "Wren") == "Nothing deleted: no personality named 'Wren'."


@pytest.mark.parametrize("err", [Unavailable("down"), DeadlineExceeded("slow")])
def test_an_unreachable_gateway_before_deleting_deleted_nothing(err: TzurotError) -> None:
    assert not_deleted_text(err, "Wren") == (
        "Nothing deleted: Tzurot cannot be reached right now; try again in a moment."
    )


@pytest.mark.parametrize(
    ("err", "why"),
    [
        (Unavailable("the memory is restarting"), "a service Tzurot needs is unavailable"),
        (DeadlineExceeded("deadline"), "Tzurot did not answer in time"),
        (Internal("boom: a stack trace"), "something went wrong on our side"),
    ],
)
def test_a_failure_half_way_says_to_ask_again_to_finish(err: TzurotError, why: str) -> None:
    text = deletion_failed_text(err, WREN)
    assert text.startswith("**Wren** (`wren`) may be only partly deleted: " + why)
    assert text.endswith(
        "If it still shows in `/character browse`, run `/personality delete` with "
        "`confirm: DELETE` again in a moment to finish deleting it."
    )
    assert "stack trace" not in text


def test_a_deletion_the_gateway_finishes_by_itself_says_so_in_its_words() -> None:
    err = FailedPrecondition(
        "the deletion of 'wren' was interrupted; it finishes by itself, usually within "
        "minutes (up to a day while ElevenLabs cannot be reached)",
        reason="DELETION_PENDING",
    )
    assert deletion_failed_text(err, WREN) == (
        "**Wren** (`wren`) is being deleted. The deletion of 'wren' was interrupted; it "
        "finishes by itself, usually within minutes (up to a day while ElevenLabs cannot be "
        "reached)."
    )


def test_a_refusal_deleted_nothing() -> None:
    err = InvalidArgument("personality", "personality is required")
    assert deletion_failed_text(err, WREN).startswith("Nothing deleted: ")
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT


def test_delete_sits_beside_the_voice_commands_with_a_required_confirm() -> None:
    group = PersonalityCommands(None)  # type: ignore[arg-type]  # the gateway is never called
    assert group.name == "personality"
    assert {c.name for c in group.commands} == {"delete", "voice", "voice-sample"}
    delete = group.get_command("delete")
    assert delete is not None
    options = {o["name"]: o for o in delete.to_dict(None)["options"]}  # type: ignore[arg-type]
    assert options["confirm"]["required"] is True
    assert options["personality"]["autocomplete"] is True


def test_elevenlabs_unreachable_before_deleting_deleted_nothing() -> None:
    """The gateway deletes a cloned voice first: when ElevenLabs cannot be reached it stops
    before anything is deleted, and says so; not "may be only partly deleted"."""
    err = Unavailable(
        "ElevenLabs could not be reached to delete a voice cloned there, so nothing was "
        "deleted; ask again in a moment",
        reason="CLONE_DELETION_UNAVAILABLE",
    )
    text = deletion_failed_text(err, WREN)
    assert text.startswith(
        "Nothing deleted: ElevenLabs could not be reached to delete the voice cloned for "
        "**Wren** (`wren`). Run "
    )
    assert "partly" not in text


def test_a_clone_under_way_refuses_the_deletion_and_deleted_nothing() -> None:
    """Its voice is being cloned: the gateway refuses before deleting anything (the clone
    would stay in the cloner's ElevenLabs account otherwise); not "may be only partly
    deleted"."""
    err = FailedPrecondition(
        "'wren''s voice is being cloned right now, so nothing was deleted; ask again once the "
        "clone is done (its voice is then deleted too)",
        reason="CLONE_IN_PROGRESS",
    )
    text = deletion_failed_text(err, WREN)
    assert text == (
        "Nothing deleted: a voice is being cloned for **Wren** (`wren`) right now. Run "
        "`/personality delete` with `confirm: DELETE` again once it is done: that voice is "
        "then deleted too."
    )


def test_another_deletion_under_way_is_said_so_not_a_partial_deletion() -> None:
    """A double click: the second request is refused while the first holds the deletion's
    locks (DELETION_IN_PROGRESS, nothing done by it); the first may still fail, so the user
    is told when asking again makes sense, never "may be only partly deleted"."""
    err = FailedPrecondition(
        "'wren' is being deleted by another request right now, so this one did nothing; if it "
        "is still there in a minute, ask again",
        reason="DELETION_IN_PROGRESS",
    )
    text = deletion_failed_text(err, WREN)
    assert text == (
        "Nothing done by this request: **Wren** (`wren`) is being deleted by another one right "
        "now. If it still shows in `/character browse` in a minute, run `/personality delete` "
        "with `confirm: DELETE` again."
    )
