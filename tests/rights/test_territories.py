"""rights.territories: groups, ISO validation, subdivision coverage, readable names."""

from __future__ import annotations

import pycountry
import pytest

from core.errors import InvalidInput
from rights.territories import (
    DACH,
    EEA,
    EU,
    GROUP_NAMES,
    GROUPS_VERSION,
    NORDICS,
    InvalidTerritory,
    country_name,
    covers,
    expand,
    group_members,
    invalid_codes,
)


@pytest.mark.parametrize("name", GROUP_NAMES)
def test_every_group_member_is_a_real_country(name: str) -> None:
    members = group_members(name)
    assert members
    assert all(pycountry.countries.get(alpha_2=code) for code in members)


def test_eu_has_27_members_and_no_united_kingdom() -> None:
    assert len(EU) == 27
    assert "GB" not in EU
    assert "GR" in EU  # ISO code, not the EU's "EL"


def test_eea_is_eu_plus_iceland_liechtenstein_norway() -> None:
    assert {"IS", "LI", "NO"} == EEA - EU
    assert "CH" not in EEA


def test_small_groups() -> None:
    assert {"DE", "AT", "CH"} == DACH
    assert {"DK", "FI", "IS", "NO", "SE"} <= NORDICS


def test_world_is_every_iso_country() -> None:
    assert len(group_members("WORLD")) == len(pycountry.countries)


def test_regional_groups_are_disjoint_where_contracts_expect() -> None:
    assert not group_members("APAC") & group_members("MENA")
    assert not group_members("MENA") & EU
    assert not group_members("LATAM") & group_members("APAC")


def test_expand_groups_and_records_their_version() -> None:
    codes, groups = expand(["eu", " US-CA ", "NO"])
    assert codes == EU | {"US-CA", "NO"}
    assert groups == {"EU": GROUPS_VERSION}


def test_expand_plain_codes_records_no_group() -> None:
    assert expand(["fr", "us-ny"]) == (frozenset({"FR", "US-NY"}), {})


def test_expand_names_every_bad_code() -> None:
    with pytest.raises(InvalidTerritory) as caught:
        expand(["FR", "QQ", "US-ZZ", "XX", "France", "zz"])
    message = str(caught.value)
    for bad in ("'QQ'", "'US-ZZ'", "'XX'", "'France'", "'zz'"):
        assert bad in message
    assert "'FR'" not in message
    assert caught.value.codes == ("QQ", "US-ZZ", "XX", "France", "zz")
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize("code", ["XX", "ZZ", "xx"])
def test_unknown_location_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidTerritory, match="unknown location"):
        expand([code])


def test_expand_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        expand("FR")


def test_unknown_group_name_is_refused() -> None:
    with pytest.raises(InvalidTerritory):
        group_members("BENELUX")


def test_invalid_codes_wants_canonical_upper_case() -> None:
    assert invalid_codes(["FR", "fr", "US-CA", "us-ca", "XX", "FR"]) == ["fr", "us-ca", "XX"]


def test_country_code_covers_its_subdivisions() -> None:
    codes = frozenset({"US"})
    assert covers(codes, "US", None)
    assert covers(codes, "US", "US-CA")
    assert not covers(codes, "CA", None)


def test_subdivision_code_covers_only_itself() -> None:
    codes = frozenset({"US-CA"})
    assert covers(codes, "US", "US-CA")
    assert not covers(codes, "US", "US-NY")
    assert not covers(codes, "US", None)  # unknown subdivision: not provably in California


def test_country_names_for_messages() -> None:
    assert country_name("SE") == "Sweden"
    assert country_name("KR") == "South Korea"
    assert country_name("us-ca") == "California"
    assert country_name("QQ") == "QQ"
