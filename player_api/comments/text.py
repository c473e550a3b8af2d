"""Comment text: what is stored (controls and combining-mark floods trimmed) and the form
blocked terms are matched in (NFKC, case folded, invisible format characters removed)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Combining marks kept on one base character: enough for any real script (Vietnamese uses
# two), far too few for "Zalgo" text that spills over neighbouring lines.
MAX_MARKS_PER_CHAR = 2
_WHITESPACE = re.compile(r"\s+")
# Joiners that real text needs (emoji sequences, Persian and Indic shaping) are kept in the
# stored text; every other format character (bidi overrides, zero-width space...) goes.
_KEPT_FORMAT = frozenset({"\u200c", "\u200d"})


class TextRefused(ValueError):
    """The text cannot be posted; ``code`` is ``empty`` or ``too_long``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def clean(text: str, max_chars: int) -> str:
    """The text as stored and shown: NFC, controls and bidi/format characters removed (but
    joiners), whitespace runs collapsed, combining marks capped per character, trimmed."""
    kept: list[str] = []
    marks = 0
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if category == "Cc" or (category == "Cf" and char not in _KEPT_FORMAT):
            char = " " if category == "Cc" else ""
        elif category in ("Mn", "Me"):
            marks += 1
            if marks > MAX_MARKS_PER_CHAR:
                continue
        else:
            marks = 0
        kept.append(char)
    result = _WHITESPACE.sub(" ", "".join(kept)).strip()
    return _checked(result, max_chars)


def _checked(text: str, max_chars: int) -> str:
    if not text:
        raise TextRefused("empty", "the comment is empty")
    if len(text) > max_chars:
        raise TextRefused("too_long", f"a comment has at most {max_chars} characters")
    return text


def normalise(text: str) -> str:
    """The matching form: NFKC (full-width and other compatibility forms fold to plain
    letters), case folded, every format character (zero-width joiners, bidi controls) and
    combining mark removed, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFKD", folded)
    visible = "".join(c for c in decomposed if unicodedata.category(c) not in _INVISIBLE)
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", visible)).strip()


_INVISIBLE = frozenset({"Cf", "Cc", "Mn", "Me"})


def squeeze(normalised: str) -> str:
    """Letters and digits only: catches terms spelt with spaces or dots between letters."""
    return "".join(c for c in normalised if c.isalnum())


def find_blocked(text: str, terms: Iterable[str]) -> str | None:
    """The first blocked term (already normalised) that ``text`` contains, else None."""
    plain = normalise(text)
    squeezed = squeeze(plain)
    for term in terms:
        if term in plain or (len(term) >= 3 and squeeze(term) in squeezed):
            return term
    return None
