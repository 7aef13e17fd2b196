"""A job's attachment reads come back as descriptions, whatever the link's signature."""

from tzurot.gateway.attachment_reads import read_key, with_reads
from tzurot.gateway.domain import Attachment

CDN = "https://cdn.discordapp.com/attachments/1/2"


def test_an_attachment_is_known_by_its_link_without_the_signature() -> None:
    assert read_key(f"{CDN}/voice-message.ogg?ex=1&is=2&hm=3") == f"{CDN}/voice-message.ogg"


def test_reads_fill_only_attachments_without_a_description() -> None:
    voice = Attachment(url=f"{CDN}/voice-message.ogg?ex=new", content_type="audio/ogg")
    told = Attachment(url=f"{CDN}/cat.png?ex=new", content_type="image/png", description="mine")
    other = Attachment(url=f"{CDN}/dog.png", content_type="image/png")
    reads = {f"{CDN}/voice-message.ogg": "Hello.", f"{CDN}/cat.png": "A cat."}
    assert [a.description for a in with_reads([voice, told, other], reads)] == [
        "Hello.",
        "mine",
        "",
    ]
