"""Where an '@' starts no personality's mention, and where a name is no word of a message: in
an e-mail address, a link or Discord's code, and at Discord's ping of everybody. One copy for
the gateway (its mentions and its group speakers) and the bot (its gateway-away notice), so
both read a message alike.

- Ping of everybody: "@everyone" or "@here" as Discord pings them, lowercase and a whole word
  ("@everyone's friend"; a '_' ends the word, so "_@everyone_" and "__@here__" in italics or
  underlined too), starts no mention, so a personality named "everyone's friend" is
  mentioned as "@Everyone's Friend" (capitalized, Discord pings nobody).

- E-mail address: an ASCII local part right before the '@' (its last character one of
  A-Z a-z 0-9 . _ % + -) and a dotted domain right after it: "ada@sage.org", not "ねえ@Sage"
  nor "@Sage.". The shape cannot tell "hmm...@Sage.What" or "ok.@Sage.thoughts" from an
  address, so these mention nobody either.
- Link: it runs over the characters a URL may hold (ASCII letters, digits and
  -._~:/?#[]@!$&'()+,;=%), so it ends at a space, at any other ASCII character (< > " ` | *
  \\ ^ { }) and at any non-ASCII one ("。", "、", smart quotes, full-width and CJK text):
  "https://youtu.be/abc。ねえ@Sage" mentions Sage. Within such a run a link starts after a
  character no host name holds (not a letter, digit, '.', '+' or '-') at a scheme
  ("https://", "steam://", "mailto:"), at "www." ("www.tiktok.com@sage" too), or at a host,
  an optional ":port" and a '/'. Whether a run holds a link depends on that run alone, never
  on the rest of the message. The host is "localhost", an IPv4 address or dotted names whose
  last label is lowercase letters:
  - two of them: a country's code, assigned or not. IANA gives two-letter top-level domains
    only to ISO 3166-1 alpha-2 codes (RFC 1591), and ICANN's new gTLD Applicant Guidebook
    refuses every two-character ASCII string for that reason: "t.co", "youtu.be", and
    "lol.jk/@Sage" too;
  - or more ("youtube.com");
  - but not a common file type's extension (`_FILE_TYPES`): "main.py/@Sage",
    "notes.md/@Sage", "src/lib.rs/@Sage", "index.html/@Sage", "Node.js/@Sage" and
    "Program.fs/@Sage" (the two-letter extensions of common source files no country has:
    fs, el, jl, vb, hx, ui, rc, ll, hh, pp) name a file before a mention. The price: a
    site on a top-level domain that is also such an extension (.py Paraguay, .md Moldova,
    .sh Saint Helena, .rs Serbia, .java, .zip, .mov) is a link only with its scheme or
    "www.": "esm.sh/@preact/signals" is not one, "https://esm.sh/@preact" and
    "www.notes.md/@Sage" are. In a chat a file's name before "/@Sage" is likelier than such
    a site written without its scheme.
  So "youtube.com/@sage", "**youtube.com/@sage**", "||youtube.com/@sage||",
  "link:youtube.com/@sage", "見てyoutube.com/@sage", "example.com:8080/@sage",
  "localhost:8080/@sage", "127.0.0.1/@sage" and "mailto:me@sage" are links, while
  "Mr.Smith/@Sage" (a capital) is not.
- Code: Discord does not document how it pairs backticks. Its parsers descend from
  simple-markdown, whose inline code rule is taken here, and its code block rule is the
  desktop client's, /^```(?:([a-z0-9_+\\-.#]+?)\\n)?\\n*([^\\n][^]*?)\\n*```/i (as its
  bundle and dismark quote it); they give what that client was seen to render (discord.js
  issue 7373: "``a\\`", "```a`", "`a```b```", "`a\\```b```"). A backslash before any
  character but a letter, digit or space escapes it ("\\`@Sage`" opens nothing,
  "\\\\`@Sage`" does). "```" opens a code block: after a language and its newline right
  away ("```py", "```c#"; "```py   " with spaces names none, so its code begins at "py")
  when that finds a closer, then any newlines, the code begins with a character that is
  not a newline and ends at the first "```" after it ("````\\n@Sage\\n```",
  "```\\n@Sage````", "```py   \\n```@Sage```" is code up to "@Sage").
  Otherwise a run of backticks opens inline code closed by the next run of exactly as many;
  where none follows, its first k backticks open it, for the largest k a run of exactly k
  follows: "``@Sage`" is code from its first backtick, "``` and `@Sage`" only up to the
  backtick before @Sage. Bold, spoilers and the other formatting, which Discord reads
  first, are not read (a name's end reads Discord's emphasis: tzurot.gateway.mentions).

Each part of a message is read a bounded number of times (a link only in a run an '@' asked
about is in, or in every run for `prose`), so the cost stays linear in its length."""

from __future__ import annotations

import bisect
import re
import unicodedata

_EMAIL_LOCAL_TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-"
"""The characters of an e-mail address's local part (ASCII)."""
_EMAIL_LOCAL = frozenset(_EMAIL_LOCAL_TEXT)
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?![A-Za-z0-9-])")
"""An e-mail address's domain, with at least one dot; it ends where its ASCII characters do
(not at a word boundary: "ada@sage.orgです" is an address followed by Japanese)."""

_URL_RUN = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()+,;=%]+")
"""A run of the characters a link may hold."""
_LINK_MARK = re.compile(r"[/:]|(?i:www)\.")
"""What every link holds: a '/' or ':' after its host or scheme, or "www."."""
_LINK_START = re.compile(
    r"(?<![A-Za-z0-9.+-])(?:"
    r"[A-Za-z][A-Za-z0-9+.-]*://|(?i:mailto):|(?i:www)\."
    r"|(?:localhost|\d{1,3}(?:\.\d{1,3}){3}|(?:[A-Za-z0-9-]+\.)+(?P<tld>[a-z]{2,}))"
    r"(?::\d{1,5})?/"
    r")"
)
"""Where a link begins: a scheme, "www.", or a host, an optional port and a '/'. Tried only
after a character no host or scheme holds, so each run of them is read once."""
_FILE_TYPES = frozenset(
    extension
    for extensions in (
        "py js ts jsx tsx mjs cjs rs go rb cs kt kts java cpp hpp cxx hxx swift lua php",
        "sh bash zsh sql dart scala hs ex exs erl clj vue svelte",  # source code
        "fs el jl vb hx ui rc ll hh pp",  # source code: two letters no country has
        "md txt rst tex json yaml yml toml xml csv tsv ini cfg conf env log lock",  # text
        "html htm css scss sass less ipynb pdf doc docx rtf odt xls xlsx ppt pptx",  # documents
        "png jpg jpeg gif webp svg ico bmp wav ogg flac webm mkv avi mov",  # images, media
        "zip rar tar gz tgz xz exe dll dmg apk iso bin dat db sqlite bak tmp",  # archives
    )
    for extension in extensions.split()
)
"""The extensions of common file types: a host ending in one is a file's name ("main.py/").
Of them .py, .md, .sh, .rs (countries), .java, .zip and .mov are top-level domains too (IANA's
list: tests/unit/runtime/test_mention_starts_rules.py)."""

_EVERYBODY = ("everyone", "here")
"""Discord's pings of everybody, as it reads them: lowercase only."""

_BACKTICKS = re.compile(r"`+")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+\-.#]+\n")
"""A code block's language and the newline right after it ("```py", "```c#"), as the
desktop client reads it: "```py   " names none (its code is "py   ")."""


def pings_everybody(text: str, at: int) -> bool:
    """Whether the '@' at `at` is Discord's ping of everybody: "@everyone" or "@here",
    lowercase, a whole word ("@everyone's", not "@heres" nor "@Here"), which a '_' ends:
    italic or underlined ("_@everyone_", "__@here__") it still pings."""
    for word in _EVERYBODY:
        if text.startswith(word, at + 1):
            after = at + 1 + len(word)
            return after == len(text) or text[after] == "_" or not _continues_word(text[after])
    return False


def _continues_word(char: str) -> bool:
    """As the gateway tells where a name ends (tzurot.gateway.personalities.continues_word):
    a letter, a combining mark, a digit, '_' or '-'."""
    return char in "_-" or unicodedata.category(char)[0] in "LMN"


def in_email(text: str, at: int) -> bool:
    """Whether the '@' at `at` is an e-mail address's: an ASCII local part right before it,
    a dotted domain right after it ("ada@sage.org", not "ねえ@Sage" nor "@Sage.")."""
    return bool(at and text[at - 1] in _EMAIL_LOCAL and _EMAIL_DOMAIN.match(text, at + 1))


def email_spans(text: str) -> list[tuple[int, int]]:
    """The e-mail addresses in `text`, (start, end) in order."""
    spans: list[tuple[int, int]] = []
    floor = 0  # no local part reaches back past an '@' (each part is read once)
    at = text.find("@")
    while at != -1:
        domain = _EMAIL_DOMAIN.match(text, at + 1) if at and text[at - 1] in _EMAIL_LOCAL else None
        if domain is None:
            floor = at + 1
            at = text.find("@", floor)
            continue
        local = text[floor:at]
        spans.append((at - len(local) + len(local.rstrip(_EMAIL_LOCAL_TEXT)), domain.end()))
        floor = domain.end()
        at = text.find("@", floor)
    return spans


def link_spans(text: str) -> list[tuple[int, int]]:
    """The links in `text`, (start, end) in order: each from where it begins (see the module
    docstring) to the end of its run of URL characters. Only the runs holding a '/', ':' or
    "www." are read, as every link holds one, each once."""
    runs = _Runs(text)
    spans: list[tuple[int, int]] = []
    mark = _LINK_MARK.search(text)
    while mark is not None:
        start, end = runs.link(mark.start())
        if start != -1:
            spans.append((start, end))
        mark = _LINK_MARK.search(text, end)
    return spans


class _Runs:
    """A message's runs of URL characters, each read once, when first asked about: where
    it begins and ends, and where a link begins in it."""

    __slots__ = ("_backwards", "_ends", "_links", "_starts", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._backwards = ""
        """`text` reversed, made when first needed: where a run begins is where its reverse
        ends."""
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._links: list[int] = []
        """Where a link begins in each run read, or -1."""

    def link(self, pos: int) -> tuple[int, int]:
        """Where a link begins in the run holding the URL character at `pos` (-1 if none),
        and where that run ends."""
        index = bisect.bisect_right(self._starts, pos) - 1
        if index >= 0 and pos < self._ends[index]:
            return self._links[index], self._ends[index]
        text = self._text
        backwards = self._backwards = self._backwards or text[::-1]
        last = len(text) - 1
        begun = _URL_RUN.match(backwards, last - pos)
        start = last - begun.end() + 1 if begun else pos
        ended = _URL_RUN.match(text, pos)
        end = ended.end() if ended else pos + 1
        link = _link_start(text, start, end)
        index += 1
        self._starts.insert(index, start)
        self._ends.insert(index, end)
        self._links.insert(index, link)
        return link, end


def _link_start(text: str, start: int, end: int) -> int:
    """Where a link begins in the run of URL characters text[start:end], or -1."""
    while (found := _LINK_START.search(text, start, end)) is not None:
        if found["tld"] not in _FILE_TYPES:
            return found.start()
        start = found.start() + 1  # "main.py/": a file's name
    return -1


class _Code:
    """One pass of Discord's code rules over a message's backtick runs (see the module
    docstring). The runs are indexed by length, so inline code's closer is found by
    bisection; a run that opens nothing is passed over whole (no part of it opens anything).
    A closer looked for in vain is missing from the rest of the message, so only the few
    openers overlapping the last "```" look for one in vain: the pass stays linear."""

    __slots__ = ("_by_length", "_ends", "_starts", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text)]
        self._starts = [start for start, _end in runs]
        self._ends = [end for _start, end in runs]
        self._by_length: dict[int, list[int]] = {}
        """The runs of each length, by their index."""
        for index, (start, end) in enumerate(runs):
            self._by_length.setdefault(end - start, []).append(index)

    def spans(self) -> list[tuple[int, int]]:
        text, starts, ends, by_length = self._text, self._starts, self._ends, self._by_length
        escapes = "\\" in text
        spans: list[tuple[int, int]] = []
        done = 0  # where the last code ended
        run = 0
        while run < len(starts):
            pos = max(starts[run], done)  # a block may end inside a run
            if escapes and _escaped(text, pos, done):
                pos += 1
            width = ends[run] - pos
            if width >= 3 and (end := self._block_at(pos)) is not None:
                spans.append((pos, end))
                done = end
                run = bisect.bisect_right(ends, end, run)
                continue
            # Inline code: as many backticks as a later run has exactly, the most first.
            for length in range(width, 0, -1):
                same = by_length.get(length, ())
                closer = bisect.bisect_right(same, run)
                if closer < len(same):
                    run = same[closer]
                    spans.append((pos, ends[run]))
                    done = ends[run]
                    break
            run += 1
        return spans

    def _block_at(self, pos: int) -> int | None:
        """The end of a code block opening at `pos`, by the desktop client's rule (the
        module docstring) tried as its regular expression backtracks: "```", a language and
        its newline (if that finds a closer), newlines, the code's first character (not a
        newline), then the first "```" after that character."""
        text = self._text
        if not text.startswith("```", pos):
            return None
        language = _LANGUAGE.match(text, pos + 3)
        for after in (language.end(), pos + 3) if language else (pos + 3,):
            code = after
            while code < len(text) and text[code] == "\n":
                code += 1
            if code < len(text) and (close := text.find("```", code + 1)) != -1:
                return close + 3
        return None


def _escaped(text: str, pos: int, floor: int) -> bool:
    """Whether the backtick at `pos` is escaped: an odd number of backslashes before it
    (each escapes the next), none of them before `floor`."""
    count = 0
    while pos - count > floor and text[pos - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def code_spans(text: str) -> list[tuple[int, int]]:
    """Discord's code blocks and inline code in `text`, (start, end) in order."""
    return _Code(text).spans() if "`" in text else []


class _Spans:
    """Sorted, disjoint spans, asked whether they cover a position."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self._starts = [start for start, _end in spans]
        self._ends = [end for _start, end in spans]

    def covers(self, index: int) -> bool:
        found = bisect.bisect_right(self._starts, index) - 1
        return found >= 0 and index < self._ends[found]


_NO_SPANS = _Spans([])


class MentionStarts:
    """Which '@'s of one message may start a mention: not an e-mail address's, a link's, one
    in code nor Discord's ping of everybody. Only what the message may hold is looked for:
    links where it has a '/', ':' or "www.", code where it has a '`'. A link is looked for
    only in the runs of URL characters holding an '@' asked about, each run once; the code
    spans are found once, when first asked."""

    __slots__ = ("_code", "_runs", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._runs = _Runs(text) if _LINK_MARK.search(text) else None
        self._code: _Spans | None = None if "`" in text else _NO_SPANS

    def may_start(self, at: int) -> bool:
        """Whether the '@' at `at` (in the text as given) may start a mention."""
        if in_email(self._text, at) or pings_everybody(self._text, at):
            return False
        if self._runs is not None and 0 <= self._runs.link(at)[0] < at:
            return False
        if self._code is None:
            self._code = _Spans(code_spans(self._text))
        return not self._code.covers(at)


def prose(text: str) -> str:
    """`text` with its e-mail addresses, links and Discord code blanked out by spaces (each
    character one space, so offsets hold): where a name may be read as a word."""
    spans = sorted([*email_spans(text), *link_spans(text), *code_spans(text)])
    if not spans:
        return text
    pieces: list[str] = []
    cursor = 0
    for start, end in spans:
        if end <= cursor:
            continue
        blank_from = max(start, cursor)
        pieces += (text[cursor:blank_from], " " * (end - blank_from))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)
