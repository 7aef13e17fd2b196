"""An '@' the gateway reads a name after counts for the gateway-away notice, whatever comes
before it: in scripts written without spaces, in Discord's underline or italics, after a
digit or a dash. Only an e-mail address's '@' (an ASCII local part before it, a dotted domain
after) is passed over. And only Discord's own pings of everybody are: lowercase `@everyone`
or `@here`, a whole word; "@Here Comes Trouble" may be a personality."""

from __future__ import annotations

import pytest

from tzurot.bot.addressing import may_mention
from tzurot.bot.messages import GATEWAY_AWAY

from .test_gateway_away import Channel, Stub, flow_with, message

MAY_MEAN_ONE = [
    "ねえ@Lilith 元気?",
    "ねえ@さくら",
    "__@Lilith please__",
    "_@Lilith hi_",
    "é@Lilith",
    "2@Lilith",
    "-@Lilith",
    "x@✨Luna✨",
    "Lilith@Lilith",
    "@Here Comes Trouble tell me",
    "@Everyone's Friend hi",
    "@Everyone",
    "@HERE",
    "ask@lilith about it",  # no dotted domain: no e-mail address
]
MEANS_NONE = [
    "mail me at ada@example.com",
    "first.last+tag@mail.example.org, thanks",
    "user%x@sub-domain.example.",
    "@here",
    "@everyone!",
    "@everyone's invited",
    "(@here)",
]


@pytest.mark.parametrize("content", MAY_MEAN_ONE)
def test_an_at_sign_the_gateway_reads_a_name_after_counts(content: str) -> None:
    assert may_mention(content)


@pytest.mark.parametrize("content", MEANS_NONE)
def test_an_e_mail_address_or_discords_ping_of_everybody_does_not(content: str) -> None:
    assert not may_mention(content)


@pytest.mark.parametrize("content", ["ねえ@Lilith 元気?", "__@Lilith please__"])
async def test_such_a_message_is_told_the_gateway_is_restarting(content: str) -> None:
    flow = flow_with(Stub())  # the gateway away
    channel = Channel()
    await flow.on_message(message(content, channel=channel))
    assert channel.sent == [GATEWAY_AWAY], content
