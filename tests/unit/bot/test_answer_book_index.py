"""`AnswerBook.answers_to` reads an index of the user's messages answered, which follows the
book: an answer is found while any of its messages is remembered, and no longer once the last
is forgotten, evicted past the capacity, or replaced by a 🔄's answer."""

from __future__ import annotations

import random

from tzurot.bot.answers import Answer, AnswerBook
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def answer_to(*asked: str, slug: str = "lilith") -> Answer:
    """An answer to the user's messages `asked` (a comment and the forward it took: two)."""
    request = gw.GenerateRequest(message_ids=list(asked), idempotency_key=f"{asked[0]}:{slug}")
    no_channel = None  # never posted to: the book keeps answers only
    return Answer(common.Personality(slug=slug), 5, no_channel, request)  # type: ignore[arg-type]


def posted(book: AnswerBook, answer: Answer, *message_ids: int) -> Answer:
    for message_id in message_ids:
        answer.message_ids.append(message_id)
        book.remember(message_id, answer)
    return answer


def scanned(book: AnswerBook) -> dict[str, set[int]]:
    """By the user's message id, the answers (`id()`) a scan of every remembered answer finds
    (`answers_to` before the index, which ordered them by their oldest message still
    remembered, not by the first)."""
    found: dict[str, set[int]] = {}
    for answer in book._by_message.values():
        for asked in answer.request.message_ids:
            found.setdefault(asked, set()).add(id(answer))
    return found


def test_an_answer_is_found_until_its_last_message_is_evicted() -> None:
    book = AnswerBook(3)
    lilith = posted(book, answer_to("1"), 11, 12)  # text, then its files' message
    sage = posted(book, answer_to("1", slug="sage"), 13)
    assert book.answers_to("1") == [lilith, sage]
    posted(book, answer_to("2"), 21)
    book.trim()  # 11 evicted: Lilith's answer is still shown as 12
    assert book.answers_to("1") == [lilith, sage]
    posted(book, answer_to("3"), 31)
    book.trim()  # 12 evicted
    assert book.answers_to("1") == [sage]
    posted(book, answer_to("4"), 41)
    book.trim()
    assert book.answers_to("1") == []
    assert "1" not in book._to_message


def test_a_regenerations_answer_takes_the_place_of_the_one_it_replaced() -> None:
    """As `Reactions._regenerate_now`: the new answer is posted (remembered), then the old
    one's messages are deleted (forgotten). A comment on a forward is found by both ids."""
    book = AnswerBook(10)
    old = posted(book, answer_to("1", "2"), 11, 12)
    new = posted(book, answer_to("1", "2"), 13)
    assert book.answers_to("1") == [old, new]  # while the old one is being deleted
    for message_id in old.message_ids:
        book.forget(message_id)
    assert book.answers_to("1") == book.answers_to("2") == [new]
    book.forget(13)
    assert book.answers_to("1") == book.answers_to("2") == []
    assert book._to_message == {}
    assert book._indexed == {}


def test_a_message_remembered_again_or_for_another_answer_is_counted_once() -> None:
    book = AnswerBook(10)
    first = posted(book, answer_to("1"), 11)
    sage = posted(book, answer_to("1", slug="sage"), 12)
    book.remember(11, first)  # the same answer again: still one message of it, still first
    assert book.answers_to("1") == [first, sage]
    book.forget(11)
    book.forget(12)
    assert book.answers_to("1") == []
    first = posted(book, answer_to("1"), 11)
    other = answer_to("2")
    book.remember(11, other)  # message 11 now belongs to another answer
    assert (book.answers_to("1"), book.answers_to("2")) == ([], [other])


def test_the_index_always_finds_what_a_scan_of_the_book_finds() -> None:
    """Random posts (answers streamed at once, their parts interleaved), deletions (❌, a 🔄's
    replaced answer) and evictions; found oldest answer first."""
    rng = random.Random(314)
    book = AnswerBook(25)
    shown: list[int] = []
    made: list[Answer] = []  # kept: their ids are never reused
    order: dict[int, int] = {}  # by `id()`: which was posted first
    next_id = 1000
    for _ in range(3000):
        action = rng.random()
        if action < 0.15 and made:  # one more part of an answer posted earlier
            posted(book, rng.choice(made[-5:]), next_id)
            shown.append(next_id)
            next_id += 1
        elif action < 0.6:
            asked = [str(rng.randrange(30))]
            if rng.random() < 0.2:  # a comment and the forward it took
                asked.append(str(rng.randrange(30)))
            answer = answer_to(*asked, slug=rng.choice(["lilith", "sage"]))
            count = rng.choice([1, 1, 2, 3])
            posted(book, answer, *range(next_id, next_id + count))
            shown.extend(range(next_id, next_id + count))
            made.append(answer)
            order[id(answer)] = len(order)
            next_id += count
        elif action < 0.8 and shown:
            book.forget(shown.pop(rng.randrange(len(shown))))
        elif shown:  # a message of an answer remembered again (never in practice)
            message_id = rng.choice(shown)
            again = book.get(message_id)
            if again is not None:
                book.remember(message_id, again)
        book.trim()
        expected = scanned(book)
        for asked_id in map(str, range(30)):
            found = book.answers_to(asked_id)
            assert {id(a) for a in found} == expected.get(asked_id, set())
            assert [id(a) for a in found] == sorted((id(a) for a in found), key=order.__getitem__)
    for message_id in list(book._by_message):
        book.forget(message_id)
    assert book._to_message == {}
    assert book._indexed == {}
