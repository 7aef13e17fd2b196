"""Channels the gateway last said have a personality activated, remembered for the
gateway-away notice: while the gateway is away, a plain message there (no '@', no reply)
meant the activated personality, and is told to try again as a mention is.

Learnt from what the gateway already answers for a message (PlanChannelReply's round,
GetChannelActivation's activation): a channel it answers as activated is remembered, one it
answers as not is forgotten; and from this bot's own `/channel activate` (remembered) and
`/channel deactivate` (forgotten, even with others still activated: the next message tells
again). A webhook's post there is never told (`Addressees.may_address`). Bounded (the most
recently seen, least recently used dropped first), kept in memory only: a restarted bot knows
none until the gateway answers again.

Known limit, left as is: PlanChannelReply's round is per user (only the activated
personalities that user may use), so in a channel where only a private personality is
activated the memory follows whoever spoke last: after another user's plain message the
channel is forgotten (its owner's next plain message while the gateway is away gets no
notice), and after the owner's, another user's plain message would get one although nothing
would have answered them (the private activation shows anyway, in its answers there).
"""

from __future__ import annotations

from collections import OrderedDict

CAPACITY = 4096


class ActivatedChannels:
    """Channel ids (threads included: each as the gateway answered for it), most recently
    seen last, at most `capacity`."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._channels: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, channel_id: object) -> bool:
        return channel_id in self._channels

    def __len__(self) -> int:
        return len(self._channels)

    def note(self, channel_id: int, *, activated: bool) -> None:
        """What the gateway just answered for a message in `channel_id`."""
        if not activated:
            self._channels.pop(channel_id, None)
            return
        self._channels[channel_id] = None
        self._channels.move_to_end(channel_id)
        while len(self._channels) > self._capacity:
            self._channels.popitem(last=False)
