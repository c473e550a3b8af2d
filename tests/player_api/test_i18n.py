"""Language negotiation: Accept-Language parsing and the per-item fallback chain."""

from __future__ import annotations

import pytest

from player_api import i18n

DEMO = ["en", "zh-Hans", "sv"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("sv-SE,sv;q=0.9,en;q=0.8", ["sv-SE", "sv", "en"]),
        ("en;q=0.5, zh-Hans;q=0.9, sv", ["sv", "zh-Hans", "en"]),
        ("da, en-GB;q=0.8, en;q=0.7", ["da", "en-GB", "en"]),
        ("fr;q=0.5,de;q=0.5", ["fr", "de"]),  # ties keep header order
        ("*", []),
        ("en;q=0, sv", ["sv"]),  # q=0 means "not this one"
        ("", []),
        (None, []),
    ],
)
def test_accept_language_is_ordered_by_quality(header: str | None, expected: list[str]) -> None:
    assert i18n.parse_accept_language(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "en;q=2",
        "en;q=abc",
        "en;q=0.12345",
        "<script>",
        "e n",
        "toolongsubtag-x",
        ";;;,,,",
        "en-",
        "-en",
        "\x00en",
        "en;q=",
    ],
)
def test_malformed_ranges_are_skipped_not_fatal(header: str) -> None:
    assert i18n.parse_accept_language(header + ", sv;q=0.5") == ["sv"]


def test_a_huge_header_is_cut_short() -> None:
    header = ",".join(["xx"] * 10_000) + ",sv"
    parsed = i18n.parse_accept_language(header)
    assert len(parsed) <= i18n.MAX_RANGES
    assert "sv" not in parsed  # past the limit: never read
    assert i18n.parse_accept_language("a" * 100_000) == []


def test_lang_parameter_wins_over_the_header() -> None:
    assert i18n.preferences("sv", "zh-Hans,en") == ["sv"]
    assert i18n.preferences(None, "zh-Hans,en") == ["zh-Hans", "en"]
    assert i18n.preferences(None, None) == ["en"]
    assert i18n.preferences("", "") == ["en"]
    # A malformed ?lang= is ignored rather than served.
    assert i18n.preferences("!!", "sv") == ["sv"]


@pytest.mark.parametrize(
    ("wanted", "available", "expected"),
    [
        (["zh-Hans"], DEMO, "zh-Hans"),
        (["ZH-hans"], DEMO, "zh-Hans"),  # case-insensitive, served as stored
        (["zh-Hans-CN"], DEMO, "zh-Hans"),
        (["zh-CN"], DEMO, "zh-Hans"),
        (["zh"], DEMO, "zh-Hans"),
        (["zh-TW"], DEMO, "zh-Hans"),  # same language beats English
        (["zh-TW"], ["en", "zh-Hans", "zh-Hant"], "zh-Hant"),
        (["zh-HK"], ["zh-Hans", "zh-Hant"], "zh-Hant"),
        (["zh-Hans-CN"], ["en", "zh", "zh-Hans"], "zh-Hans"),
        (["sv-SE"], DEMO, "sv"),
        (["sv"], ["en", "sv-SE"], "sv-SE"),
        (["sv-FI"], ["en", "sv-SE"], "sv-SE"),
        (["en-GB"], DEMO, "en"),
        (["en-GB"], ["en-US", "en-GB"], "en-GB"),
        (["da", "sv"], DEMO, "sv"),  # the first preference served decides
        (["sv", "zh-Hans"], DEMO, "sv"),
    ],
)
def test_lookup_follows_the_fallback_chain(
    wanted: list[str], available: list[str], expected: str
) -> None:
    assert i18n.lookup(available, wanted) == expected
    assert i18n.pick(available, wanted, available[0]) == expected


def test_no_match_falls_back_to_the_items_own_language_then_the_first() -> None:
    assert i18n.lookup(DEMO, ["de", "fr"]) is None
    assert i18n.pick(DEMO, ["de"], own="sv") == "sv"
    assert i18n.pick(["zh-Hans", "sv"], ["de"], own="en") == "zh-Hans"
    assert i18n.pick([], ["de"], own="en") == "en"


@pytest.mark.parametrize(
    ("tag", "valid"),
    [("en", True), ("zh-Hans-CN", True), ("es-419", True), ("x", True), ("", False)],
)
def test_is_tag(tag: str, valid: bool) -> None:
    assert i18n.is_tag(tag) is valid
    assert i18n.is_tag("a" * 9) is False
    assert i18n.is_tag("en-" + "-".join(["abc"] * 10)) is False  # longer than 35
