"""Territory codes for grants: ISO 3166-1 alpha-2 countries, ISO 3166-2 subdivisions, and
named groups expanded into countries when a grant is saved.

Group definitions change (countries join or leave the EU), so a grant stores the expanded
codes plus the ``GROUPS_VERSION`` it was expanded with, never the group name alone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import pycountry

from core.errors import InvalidInput

GROUPS_VERSION = "2026-01"

# The European Union's 27 member states since the United Kingdom left (1 February 2020).
# ISO codes throughout, so Greece is GR (the EU's own abbreviation is EL).
EU = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip

# The European Economic Area Agreement: the EU plus Iceland, Liechtenstein and Norway.
# Switzerland is not a party (bilateral treaties instead), so it is not here.
EEA = EU | {"IS", "LI", "NO"}

# Asia-Pacific has no standard; we take the UN M49 sub-regions Eastern Asia (030),
# South-eastern Asia (035), Southern Asia (034) and Oceania (009), plus Taiwan (M49 files it
# under China, ISO gives it its own code), minus Iran (placed in MENA, as contracts do).
# Central and Western Asia are not APAC.
APAC = frozenset(
    {
        # Eastern Asia
        "CN", "HK", "MO", "JP", "KP", "KR", "MN", "TW",
        # South-eastern Asia
        "BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "TL", "VN",
        # Southern Asia (without IR)
        "AF", "BD", "BT", "IN", "MV", "NP", "PK", "LK",
        # Oceania: Australia and New Zealand, Melanesia, Micronesia, Polynesia
        "AU", "NZ", "NF", "CX", "CC", "HM",
        "FJ", "NC", "PG", "SB", "VU",
        "GU", "KI", "MH", "FM", "NR", "MP", "PW", "UM",
        "AS", "CK", "PF", "NU", "PN", "WS", "TK", "TO", "TV", "WF",
    }
)  # fmt: skip

# The World Bank's "Middle East and North Africa" region (FY2024 classification, before it
# became MENAAP), minus Malta, which is an EU member that sports contracts place in Europe.
MENA = frozenset(
    {
        "DZ", "BH", "DJ", "EG", "IR", "IQ", "IL", "JO", "KW", "LB", "LY", "MA", "OM", "PS",
        "QA", "SA", "SY", "TN", "AE", "YE",
    }
)  # fmt: skip

# The Nordic Council's members (Denmark, Finland, Iceland, Norway, Sweden) and the three
# autonomous territories that sit on it and have their own ISO code: Faroe Islands,
# Greenland and Åland.
NORDICS = frozenset({"DK", "FI", "IS", "NO", "SE", "FO", "GL", "AX"})

# Germany, Austria and Switzerland (D-A-CH, the German-speaking market). Liechtenstein
# ("DACHL") is left out: list it separately when a contract includes it.
DACH = frozenset({"DE", "AT", "CH"})

# UN M49 "Latin America and the Caribbean" (419): the Caribbean, Central America and South
# America sub-regions, including the non-Latin Caribbean islands, as M49 does.
LATAM = frozenset(
    {
        # Caribbean
        "AI", "AG", "AW", "BS", "BB", "BQ", "VG", "KY", "CU", "CW", "DM", "DO", "GD", "GP",
        "HT", "JM", "MQ", "MS", "PR", "BL", "KN", "LC", "MF", "VC", "SX", "TT", "TC", "VI",
        # Central America
        "BZ", "CR", "SV", "GT", "HN", "MX", "NI", "PA",
        # South America
        "AR", "BO", "BV", "BR", "CL", "CO", "EC", "FK", "GF", "GY", "PY", "PE", "GS", "SR",
        "UY", "VE",
    }
)  # fmt: skip

# WORLD: every ISO 3166-1 country pycountry knows, built on first use (see group_members).
_STATIC_GROUPS = {
    "EU": EU,
    "EEA": EEA,
    "APAC": APAC,
    "MENA": MENA,
    "NORDICS": NORDICS,
    "DACH": DACH,
    "LATAM": LATAM,
}
GROUP_NAMES = (*_STATIC_GROUPS, "WORLD")

# User-assigned codes that geo databases use for "unknown"; they name no place.
_REFUSED = frozenset({"XX", "ZZ"})
_COUNTRY_SHAPE = re.compile(r"[A-Z]{2}")
_SUBDIVISION_SHAPE = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")


class InvalidTerritory(InvalidInput):
    """One or more territory codes are unknown, refused, or not upper-case ISO codes."""

    code = "invalid_territory"

    def __init__(self, codes: Iterable[str]) -> None:
        self.codes = tuple(dict.fromkeys(codes))
        super().__init__("invalid territory codes: " + ", ".join(map(_describe, self.codes)))


def _describe(code: str) -> str:
    if code.strip().upper() in _REFUSED:
        return f"{code!r} (means 'unknown location', not a place)"
    return repr(code)


def _subdivision_name(code: str) -> str | None:
    # pycountry's Subdivisions.get carries no annotations: the one untyped call, kept here.
    found = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    return None if found is None else str(found.name)


def is_known(code: str) -> bool:
    """Whether ``code`` is an upper-case ISO 3166-1 alpha-2 or ISO 3166-2 code (not XX/ZZ)."""
    if code in _REFUSED:
        return False
    if _COUNTRY_SHAPE.fullmatch(code):
        return pycountry.countries.get(alpha_2=code) is not None
    if _SUBDIVISION_SHAPE.fullmatch(code):
        return _subdivision_name(code) is not None
    return False


def invalid_codes(codes: Iterable[str]) -> list[str]:
    """The codes in ``codes`` that ``is_known`` refuses, in order, without repeats."""
    return [code for code in dict.fromkeys(codes) if not is_known(code)]


@functools.cache
def group_members(name: str) -> frozenset[str]:
    """The member countries of group ``name`` (one of ``GROUP_NAMES``), checked against pycountry.

    Checked on first use rather than at import, so importing rights stays cheap; a typo in a
    definition then fails loudly instead of silently shrinking every licence that uses it.
    """
    if name == "WORLD":
        return frozenset(country.alpha_2 for country in pycountry.countries)
    if name not in _STATIC_GROUPS:
        raise InvalidTerritory([name])
    members = _STATIC_GROUPS[name]
    if bad := invalid_codes(members):
        raise InvalidTerritory(bad)
    return members


def expand(codes: Iterable[str]) -> tuple[frozenset[str], dict[str, str]]:
    """Expand group names into countries and validate every code.

    Codes are trimmed and upper-cased. Returns the expanded codes and ``{group: version}``
    for the groups used, to be stored with the grant. Raises ``InvalidTerritory`` naming every
    unknown code, and ``XX``/``ZZ``, which geo databases use for an unknown location.
    """
    if isinstance(codes, str):
        # A bare "FR" would otherwise be read as the codes "F" and "R".
        raise TypeError("expand() takes a collection of codes, not a single string")
    expanded: set[str] = set()
    groups: dict[str, str] = {}
    bad: list[str] = []
    for raw in codes:
        code = raw.strip().upper()
        if code in GROUP_NAMES:
            groups[code] = GROUPS_VERSION
            expanded |= group_members(code)
        elif is_known(code):
            expanded.add(code)
        else:
            bad.append(raw)
    if bad:
        raise InvalidTerritory(bad)
    return frozenset(expanded), groups


def covers(codes: frozenset[str], country: str, subdivision: str | None) -> bool:
    """Whether ``codes`` include a viewer in ``country`` (and ISO 3166-2 ``subdivision``).

    A country code covers all its subdivisions; a subdivision code covers only itself, so a
    viewer whose subdivision is unknown is covered only by their country's code.
    """
    return country in codes or (subdivision is not None and subdivision in codes)


@functools.lru_cache(maxsize=1024)
def country_name(code: str) -> str:
    """A readable name for a country or subdivision code, for messages ("Sweden", "California").

    Falls back to the code itself when pycountry does not know it.
    """
    code = code.upper()
    if _COUNTRY_SHAPE.fullmatch(code) and (country := pycountry.countries.get(alpha_2=code)):
        # The common name is what fans say ("South Korea", not "Korea, Republic of").
        return str(getattr(country, "common_name", None) or country.name)
    if _SUBDIVISION_SHAPE.fullmatch(code):
        return _subdivision_name(code) or code
    return code
