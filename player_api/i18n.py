"""Language negotiation for fans: which of an item's languages to serve.

Pure functions. Preferences come from ``?lang=`` (wins), else ``Accept-Language`` (q-values
honoured), else English. For one item the served language is, for the first preference that
matches anything: the exact tag (case-insensitive), else the same language with a shorter or
longer tag (``zh-Hans-CN`` → ``zh-Hans`` → ``zh``, ``sv`` → ``sv-SE``), else the same language
at all (``sv-SE`` ~ ``sv-FI``); when no preference matches, the item's own language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

DEFAULT_LANG = "en"
# A header longer than this is cut (browsers send well under 200 characters); at most this many
# ranges are considered, so a hostile header costs little.
MAX_HEADER_CHARS = 512
MAX_RANGES = 16
MAX_TAG_CHARS = 35  # the asset_translations.lang column

_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_QVALUE = re.compile(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")
# Chinese regions whose readers expect a script the tag does not name (RFC 4647 lookup alone
# would serve zh-TW readers Simplified before Traditional).
_IMPLIED_SCRIPT = {
    "zh-tw": "zh-hant-tw",
    "zh-hk": "zh-hant-hk",
    "zh-mo": "zh-hant-mo",
    "zh-cn": "zh-hans-cn",
    "zh-sg": "zh-hans-sg",
}


def is_tag(value: str) -> bool:
    """Whether ``value`` is shaped like a BCP 47 tag (letters/digits in hyphenated subtags)."""
    return len(value) <= MAX_TAG_CHARS and _TAG.fullmatch(value) is not None


def parse_accept_language(header: str | None) -> list[str]:
    """The tags of an ``Accept-Language`` header, most wanted first (ties keep header order).

    Malformed ranges, ``*`` and ``q=0`` are skipped, never an error: a browser's odd header
    must not break the page."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:MAX_HEADER_CHARS].split(",")[:MAX_RANGES]):
        parsed = _parse_range(part)
        if parsed is not None and parsed[1] > 0:
            weighted.append((-parsed[1], position, parsed[0]))
    return [tag for _, _, tag in sorted(weighted)]


def _parse_range(part: str) -> tuple[str, float] | None:
    tag, *params = (piece.strip() for piece in part.split(";"))
    if not is_tag(tag):
        return None
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "q":
            continue
        if _QVALUE.fullmatch(value.strip()) is None:
            return None
        quality = float(value)
    return tag, quality


def preferences(lang_param: str | None, accept_language: str | None) -> list[str]:
    """What the viewer wants, in order: ``?lang=`` alone when given and well formed, else the
    header's tags, else English."""
    if lang_param and is_tag(lang_param):
        return [lang_param]
    return parse_accept_language(accept_language) or [DEFAULT_LANG]


def _expand(tag: str) -> str:
    lowered = tag.lower()
    return _IMPLIED_SCRIPT.get(lowered, lowered)


def _score(wanted: str, available: str) -> int:
    """How well ``available`` serves ``wanted``: 0 not at all, higher is better."""
    want, have = _expand(wanted), _expand(available)
    if want == have:
        return 1000
    if want.startswith(have + "-"):  # a less specific tag of ours: the longer, the better
        return 500 + len(have)
    if have.startswith(want + "-"):  # a more specific tag of ours: the shorter, the better
        return 400 - len(have)
    if want.split("-")[0] == have.split("-")[0]:
        return 100 + _shared_subtags(want, have)
    return 0


def _shared_subtags(want: str, have: str) -> int:
    return len(set(want.split("-")[1:]) & set(have.split("-")[1:]))


def lookup(available: Sequence[str], wanted: Sequence[str]) -> str | None:
    """The tag of ``available`` that best serves the first preference any of them serves;
    None when none does."""
    for preference in wanted:
        scored = [(_score(preference, tag), -index) for index, tag in enumerate(available)]
        best = max(scored, default=(0, 0))
        if best[0] > 0:
            return available[-best[1]]
    return None


def pick(available: Sequence[str], wanted: Sequence[str], own: str) -> str:
    """The tag to serve: ``lookup``'s answer, else ``own`` (the item's own language) when it
    is available, else the first available."""
    found = lookup(available, wanted)
    if found is not None:
        return found
    return own if own in available or not available else available[0]
