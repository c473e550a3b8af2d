"""Stored text and blocked-term matching, including the usual evasions."""

from __future__ import annotations

import pytest

from player_api.comments.text import TextRefused, clean, find_blocked, normalise

TERMS = [normalise("scam"), normalise("free tickets")]


@pytest.mark.parametrize(
    "attempt",
    [
        "SCAM",  # mixed case
        "ScAm here",
        "ｓｃａｍ",  # full-width letters
        "s\u200dc\u200ba\u200cm",  # zero-width joiner, space and non-joiner between letters
        "s\u202ec\u202da\u2066m\u2069",  # bidi overrides and isolates
        "s\u0301c\u0308am",  # combining marks on the letters
        "FREE   Tickets!!",
        "f.r.e.e t.i.c.k.e.t.s",  # punctuation between letters
        "\uff26\uff32\uff25\uff25 \uff34\uff29\uff23\uff2b\uff25\uff34\uff33",
    ],
)
def test_evasions_of_a_blocked_term_are_caught(attempt: str) -> None:
    assert find_blocked(attempt, TERMS) is not None


@pytest.mark.parametrize("fine", ["what a save", "scan the crowd", "free kick", "tickets"])
def test_ordinary_text_passes(fine: str) -> None:
    assert find_blocked(fine, TERMS) is None


def test_terms_are_normalised_like_the_text() -> None:
    assert normalise("  ＦＲＥＥ\u200b Tickets ") == "free tickets"


def test_control_and_bidi_characters_are_removed_from_stored_text() -> None:
    assert clean("goal\x00\x07 \u202eevil\u202c\r\nnext", 300) == "goal evil next"


def test_emoji_joiners_survive() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean(f"nice {family}", 300) == f"nice {family}"


def test_combining_mark_floods_are_trimmed() -> None:
    zalgo = "g" + "\u0300\u0301\u0302\u0303\u0304\u0305" * 20 + "oal"
    cleaned = clean(zalgo, 300)
    assert cleaned == "g\u0300\u0301oal"
    assert clean("Việt", 300) == "Việt"  # real diacritics stay


@pytest.mark.parametrize(("text", "code"), [("   \u200b\x00 ", "empty"), ("x" * 301, "too_long")])
def test_empty_and_too_long_are_refused(text: str, code: str) -> None:
    with pytest.raises(TextRefused) as refused:
        clean(text, 300)
    assert refused.value.code == code


def test_the_length_limit_counts_after_cleaning() -> None:
    # NFC makes the first mark part of "á"; two more marks are kept on it.
    assert clean("a" + "\u0301" * 500, 3) == "\u00e1\u0301\u0301"
