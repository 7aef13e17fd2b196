"""Each Discord message is handled once, even when the gateway delivers it twice."""

from __future__ import annotations

from collections import OrderedDict


class SeenMessages:
    """A bounded set of message ids; `first_time` is True only for the first sighting."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._seen

    def first_time(self, message_id: int) -> bool:
        if message_id in self._seen:
            self._seen.move_to_end(message_id)
            return False
        self._seen[message_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True
