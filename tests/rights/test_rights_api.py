"""The rights manager API (/v1/rights/…): grants on every scope, territory groups, narrowing,
approval and revocation, the audit log, blackouts, the availability map, explanations, bulk
import, and who may do any of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pycountry
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Asset, League, Match, RightsAudit, RightsGrant
from rights.cache import RightsCache
from rights.evaluate import evaluate
from rights.model import CLIP_LICENSES, Reason, Viewer
from rights.records import load_item_rights
from rights.territories import EU, GROUPS_VERSION, NORDICS
from tests.conftest import bearer
from tests.rights.conftest import ClientFrom, add_asset, insert_grant, scope_tree

US = "216.160.83.56"
Call = Callable[..., Response]


def _call(client: TestClient, secret: str | None) -> Call:
    headers = bearer(secret) if secret else {}

    def call(method: str, path: str, body: object = None, **params: str | int) -> Response:
        return client.request(method, path, json=body, params=params or None, headers=headers)

    return call


@pytest.fixture
def api(client_from: ClientFrom) -> TestClient:
    return client_from(US)


@pytest.fixture
def manager(api: TestClient, rights_manager_key: str) -> Call:
    return _call(api, rights_manager_key)


@pytest.fixture
def admin(api: TestClient, admin_key: str) -> Call:
    return _call(api, admin_key)


@pytest.fixture
def tree(db: Session, rights_league: League) -> tuple[Match, Asset]:
    """league → competition → season → match → asset, all in the rights league."""
    fixture = scope_tree(db, rights_league)
    asset = add_asset(db, rights_league, title="in the tree", match=fixture)
    return fixture, asset


@pytest.fixture
def item(db: Session, rights_league: League) -> Asset:
    return add_asset(db, rights_league, title="item")


def grant_body(scope_type: str, scope_id: object, **values: object) -> dict[str, object]:
    return {
        "scope_type": scope_type,
        "scope_id": str(scope_id),
        "license_type": "highlights",
        "territories": ["GB"],
        **values,
    }


def created(response: Response) -> dict[str, object]:
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def error(response: Response) -> dict[str, object]:
    err = response.json()["error"]
    assert isinstance(err, dict)
    return err


def grants_in_db(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(RightsGrant)) or 0


# --- creating grants on each scope -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["league", "competition", "season", "match", "asset"])
def test_create_grant_on_every_scope(
    manager: Call, rights_league: League, tree: tuple[Match, Asset], kind: str
) -> None:
    fixture, asset = tree
    scope_ids = {
        "league": str(rights_league.id),
        "competition": str(fixture.season.competition_id),
        "season": str(fixture.season_id),
        "match": str(fixture.id),
        "asset": asset.id,
    }
    body = created(manager("POST", "/v1/rights/grants", grant_body(kind, scope_ids[kind])))
    assert body["scope_type"] == kind
    assert body["scope_id"] == scope_ids[kind]
    assert body["territories"] == ["GB"]
    assert body["status"] == "pending"  # new grants wait for approval
    assert str(body["created_by"]).startswith("api_key:")
    listed = manager("GET", "/v1/rights/grants", scope_type=kind, scope_id=scope_ids[kind])
    assert [g["id"] for g in listed.json()] == [body["id"]]
    fetched = manager("GET", f"/v1/rights/grants/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body


def test_grants_on_each_level_of_the_tree_chain_in_explain(
    manager: Call, rights_league: League, tree: tuple[Match, Asset]
) -> None:
    fixture, asset = tree
    ids = []
    chain = [
        ("league", rights_league.id),
        ("competition", fixture.season.competition_id),
        ("season", fixture.season_id),
        ("match", fixture.id),
        ("asset", asset.id),
    ]
    for kind, scope_id in chain:
        body = grant_body(kind, scope_id, territories=["GB", "SE"], status="approved")
        ids.append(created(manager("POST", "/v1/rights/grants", body))["id"])
    explained = manager("GET", f"/v1/rights/{asset.id}/explain", country="SE").json()
    assert explained["allowed"] is True
    assert explained["grant_id"] == ids[-1]  # the deepest level's grant
    assert [g["scope"] for g in explained["chain"]] == [f"{k}:{i}" for k, i in chain]
    assert [g["id"] for g in explained["chain"]] == ids


@pytest.mark.parametrize(
    ("kind", "scope_id", "status"),
    [("league", "999999", 404), ("asset", "nope", 404), ("league", "abc", 422), ("team", "1", 422)],
)
def test_unknown_or_malformed_scope_is_refused(
    manager: Call, kind: str, scope_id: str, status: int
) -> None:
    response = manager("POST", "/v1/rights/grants", grant_body(kind, scope_id))
    assert response.status_code == status, response.text


# --- territories -----------------------------------------------------------------------------


def test_territory_groups_are_expanded_and_versioned(manager: Call, rights_league: League) -> None:
    body = grant_body(
        "league", rights_league.id, territories=["EU", "gb", "NORDICS"], excluded=["DE-BY"]
    )
    grant = created(manager("POST", "/v1/rights/grants", body))
    assert grant["territories"] == sorted(EU | NORDICS | {"GB"})
    assert "EU" not in grant["territories"]  # the group name is never stored as a code
    assert grant["excluded"] == ["DE-BY"]
    assert grant["territory_groups"] == {"EU": GROUPS_VERSION, "NORDICS": GROUPS_VERSION}


def test_a_country_can_be_carved_out_of_a_group(manager: Call, rights_league: League) -> None:
    body = grant_body("league", rights_league.id, territories=["EU"], excluded=["FR"])
    response = manager("POST", "/v1/rights/grants", body)
    assert response.status_code == 201, response.text
    assert response.json()["excluded"] == ["FR"]
    assert response.json()["territory_groups"] == {"EU": GROUPS_VERSION}


def test_patching_exclusions_keeps_the_group_versions(manager: Call, rights_league: League) -> None:
    body = grant_body("league", rights_league.id, territories=["EU"])
    grant = created(manager("POST", "/v1/rights/grants", body))
    patched = manager("PATCH", f"/v1/rights/grants/{grant['id']}", {"excluded": ["DE-BY"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["territories"] == sorted(EU)
    assert patched.json()["excluded"] == ["DE-BY"]
    assert patched.json()["territory_groups"] == {"EU": GROUPS_VERSION}


def test_invalid_territory_codes_are_422_naming_them(manager: Call, rights_league: League) -> None:
    body = grant_body("league", rights_league.id, territories=["GB", "QQ", "GBR", "EUROPE"])
    response = manager("POST", "/v1/rights/grants", body)
    assert response.status_code == 422
    assert error(response)["code"] == "invalid_territory"
    message = str(error(response)["message"])
    for code in ("'QQ'", "'GBR'", "'EUROPE'"):
        assert code in message
    assert "'GB'" not in message
    excluded = grant_body(
        "league", rights_league.id, worldwide=True, territories=[], excluded=["Q1"]
    )
    response = manager("POST", "/v1/rights/grants", excluded)
    assert response.status_code == 422
    assert "'Q1'" in str(error(response)["message"])


@pytest.mark.parametrize("code", ["XX", "ZZ", "xx"])
def test_unknown_location_codes_are_refused(
    manager: Call, rights_league: League, code: str
) -> None:
    response = manager(
        "POST", "/v1/rights/grants", grant_body("league", rights_league.id, territories=[code])
    )
    assert response.status_code == 422
    assert "unknown location" in str(error(response)["message"])


def test_worldwide_with_territories_is_422(
    db: Session, manager: Call, rights_league: League
) -> None:
    before = grants_in_db(db)
    both = grant_body("league", rights_league.id, worldwide=True, territories=["GB"])
    response = manager("POST", "/v1/rights/grants", both)
    assert response.status_code == 422
    assert "worldwide" in str(error(response)["message"])
    neither = grant_body("league", rights_league.id, territories=[])
    assert manager("POST", "/v1/rights/grants", neither).status_code == 422
    assert grants_in_db(db) == before
    # Worldwide with carve-outs is how "everywhere but" is said.
    carved = grant_body("league", rights_league.id, worldwide=True, territories=[], excluded=["CN"])
    body = created(manager("POST", "/v1/rights/grants", carved))
    assert body["worldwide"] is True
    assert body["territories"] == []
    assert body["excluded"] == ["CN"]


# --- narrowing -------------------------------------------------------------------------------

PARENT_START = datetime(2026, 1, 1, tzinfo=UTC)
PARENT_END = datetime(2030, 1, 1, tzinfo=UTC)


def _window(start: datetime, end: datetime) -> dict[str, object]:
    return {"start": {"at": start.isoformat()}, "end": {"at": end.isoformat()}}


@pytest.fixture
def parent(manager: Call, rights_league: League) -> dict[str, object]:
    body = grant_body(
        "league",
        rights_league.id,
        territories=["GB", "FR"],
        platforms=["web", "ios"],
        window=_window(PARENT_START, PARENT_END),
        vpn_policy="block_anonymous",
        status="approved",
    )
    return created(manager("POST", "/v1/rights/grants", body))


def _child(tree: tuple[Match, Asset], **changes: object) -> dict[str, object]:
    fixture, _asset = tree
    values: dict[str, object] = {
        "territories": ["GB"],
        "platforms": ["web"],
        "window": _window(PARENT_START + timedelta(days=1), PARENT_END - timedelta(days=1)),
        "vpn_policy": "block_anonymous",
        **changes,
    }
    return grant_body("competition", fixture.season.competition_id, **values)


def test_a_child_inside_its_parent_is_accepted(
    manager: Call, parent: dict[str, object], tree: tuple[Match, Asset]
) -> None:
    assert parent["status"] == "approved"
    child = created(manager("POST", "/v1/rights/grants", _child(tree)))
    assert child["scope_type"] == "competition"


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"territories": ["GB", "SE"]}, "territories: SE is outside grant #{parent}"),
        ({"territories": [], "worldwide": True}, "territories: worldwide is wider"),
        (
            {"window": _window(PARENT_START, PARENT_END + timedelta(days=30))},
            "window: end 2030-01-31T00:00:00+00:00 is after the end of grant #{parent}",
        ),
        (
            {"window": _window(PARENT_START - timedelta(days=1), PARENT_END)},
            "window: start 2025-12-31T00:00:00+00:00 is before the start of grant #{parent}",
        ),
        ({"window": {"start": {"at": PARENT_START.isoformat()}}}, "window: an open end"),
        ({"platforms": ["web", "android"]}, "platforms: android is outside grant #{parent}"),
        ({"platforms": None}, "platforms: every platform is wider"),
        ({"vpn_policy": "allow"}, "vpn: allows anonymizers, which grant #{parent} blocks"),
    ],
)
def test_a_child_that_widens_its_parent_is_422_naming_the_rule(
    db: Session,
    manager: Call,
    parent: dict[str, object],
    tree: tuple[Match, Asset],
    changes: dict[str, object],
    rule: str,
) -> None:
    before = grants_in_db(db)
    response = manager("POST", "/v1/rights/grants", _child(tree, **changes))
    assert response.status_code == 422, response.text
    assert error(response)["code"] == "grant_widens"
    assert rule.format(parent=parent["id"]) in str(error(response)["message"])
    assert grants_in_db(db) == before


def test_patching_a_child_wider_than_its_parent_is_422(
    manager: Call, parent: dict[str, object], tree: tuple[Match, Asset]
) -> None:
    child = created(manager("POST", "/v1/rights/grants", _child(tree, status="approved")))
    response = manager("PATCH", f"/v1/rights/grants/{child['id']}", {"territories": ["SE"]})
    assert response.status_code == 422
    assert error(response)["code"] == "grant_widens"
    assert f"SE is outside grant #{parent['id']}" in str(error(response)["message"])
    assert manager("GET", f"/v1/rights/grants/{child['id']}").json()["territories"] == ["GB"]


# --- approve, revoke, audit ------------------------------------------------------------------


def test_approve_and_revoke_take_effect(manager: Call, rights_league: League, item: Asset) -> None:
    grant = created(manager("POST", "/v1/rights/grants", grant_body("league", rights_league.id)))

    def gb_allowed() -> bool:
        explained = manager("GET", f"/v1/rights/{item.id}/explain", country="GB")
        assert explained.status_code == 200, explained.text
        return bool(explained.json()["allowed"])

    assert not gb_allowed()  # pending does not license
    approved = manager("PATCH", f"/v1/rights/grants/{grant['id']}", {"status": "approved"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert gb_allowed()
    revoked = manager("PATCH", f"/v1/rights/grants/{grant['id']}", {"status": "revoked"})
    assert revoked.json()["status"] == "revoked"
    assert not gb_allowed()


def test_audit_log_shows_create_and_update_with_actor_before_and_after(
    manager: Call, admin: Call, rights_league: League
) -> None:
    grant = created(manager("POST", "/v1/rights/grants", grant_body("league", rights_league.id)))
    patched = admin(
        "PATCH",
        f"/v1/rights/grants/{grant['id']}",
        {"status": "approved", "territories": ["GB", "IE"]},
    )
    assert patched.status_code == 200, patched.text

    log = manager("GET", "/v1/rights/audit", entity="grant", entity_id=grant["id"])
    assert log.status_code == 200, log.text
    create, update = log.json()
    assert create["action"] == "create"
    assert create["entity"] == "grant"
    assert create["entity_id"] == grant["id"]
    assert create["actor"] == grant["created_by"]
    assert create["before"] is None
    assert create["after"]["status"] == "pending"
    assert create["after"]["territories"] == ["GB"]
    assert update["action"] == "update"
    assert update["actor"].startswith("api_key:")
    assert update["actor"] != create["actor"]  # the admin, not the manager
    assert update["before"]["status"] == "pending"
    assert update["before"]["territories"] == ["GB"]
    assert update["after"]["status"] == "approved"
    assert update["after"]["territories"] == ["GB", "IE"]
    assert datetime.fromisoformat(create["at"]) <= datetime.fromisoformat(update["at"])


def test_audit_of_an_unknown_entity_is_404(manager: Call) -> None:
    assert manager("GET", "/v1/rights/audit", entity="grant", entity_id=987654).status_code == 404
    assert manager("GET", "/v1/rights/audit", entity="user", entity_id=1).status_code == 422


# --- blackouts -------------------------------------------------------------------------------


def _blackout(league: League, **values: object) -> dict[str, object]:
    return {"scope_type": "league", "scope_id": str(league.id), "countries": ["GB"], **values}


def test_blackout_create_update_and_audit(manager: Call, rights_league: League) -> None:
    starts = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
    body = _blackout(
        rights_league,
        networks=["81.2.69.0/24"],
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=3)).isoformat(),
        priority=5,
    )
    blackout = created(manager("POST", "/v1/rights/blackouts", body))
    assert blackout["countries"] == ["GB"]
    assert blackout["networks"] == ["81.2.69.0/24"]
    assert blackout["active"] is True
    assert datetime.fromisoformat(str(blackout["starts_at"])) == starts

    lifted = manager(
        "PUT",
        f"/v1/rights/blackouts/{blackout['id']}",
        _blackout(
            rights_league, countries=["FR"], action="alternate", alternate_item="x1", active=False
        ),
    )
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["active"] is False
    assert lifted.json()["countries"] == ["FR"]
    assert lifted.json()["alternate_item"] == "x1"

    log = manager("GET", "/v1/rights/audit", entity="blackout", entity_id=blackout["id"]).json()
    assert [entry["action"] for entry in log] == ["create", "update"]
    assert log[1]["before"]["countries"] == ["GB"]
    assert log[1]["after"]["countries"] == ["FR"]
    assert log[1]["after"]["active"] is False
    missing = manager("PUT", "/v1/rights/blackouts/987654", _blackout(rights_league))
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"networks": ["not-a-network"]}, "networks"),
        ({"networks": ["10.0.0.0/33"]}, "networks"),
        ({"action": "alternate"}, "alternate_item"),
        ({"action": "block", "alternate_item": "x1"}, "alternate_item"),
        ({"countries": []}, "audience"),
        ({"countries": ["QQ"]}, "QQ"),
        (
            {"starts_at": "2026-06-01T20:00:00+00:00", "ends_at": "2026-06-01T18:00:00+00:00"},
            "starts_at",
        ),
        ({"action": "mute"}, "action"),
    ],
)
def test_invalid_blackout_is_422(
    manager: Call, rights_league: League, changes: dict[str, object], words: str
) -> None:
    response = manager("POST", "/v1/rights/blackouts", _blackout(rights_league, **changes))
    assert response.status_code == 422, response.text
    assert words in str(error(response)["message"])


def test_blackout_network_with_host_bits_does_not_break_the_catalog(
    manager: Call, rights_league: League, item: Asset
) -> None:
    grant = grant_body(
        "league", rights_league.id, worldwide=True, territories=[], status="approved"
    )
    created(manager("POST", "/v1/rights/grants", grant))
    blackout = _blackout(rights_league, countries=[], networks=["81.2.69.1/24"])
    response = manager("POST", "/v1/rights/blackouts", blackout)
    assert response.status_code in (201, 422), response.text
    # Whatever was accepted, the league's highlights still list and explain.
    explained = manager("GET", f"/v1/rights/{item.id}/explain", country="GB")
    assert explained.status_code == 200
    assert explained.json()["allowed"] is True


def test_blackout_codes_are_stored_as_they_are_matched(
    db: Session, rights_cache: RightsCache, manager: Call, rights_league: League, item: Asset
) -> None:
    insert_grant(db, rights_cache, "league", rights_league.id, worldwide=True)
    body = _blackout(rights_league, countries=["gb", "NORDICS"], platforms=["IOS"])
    stored = created(manager("POST", "/v1/rights/blackouts", body))
    countries = stored["countries"]
    assert isinstance(countries, list)
    assert "GB" in countries
    live = replace(load_item_rights(db, [item])[item.id], is_live=True)
    decision = evaluate(live, Viewer("GB"), datetime.now(UTC), CLIP_LICENSES)
    assert decision.reason is Reason.BLACKOUT
    assert evaluate(live, Viewer("SE"), datetime.now(UTC), CLIP_LICENSES).reason is Reason.BLACKOUT


# --- availability and explain ----------------------------------------------------------------


@pytest.fixture
def gb_only(db: Session, rights_cache: RightsCache, rights_league: League) -> RightsGrant:
    return insert_grant(db, rights_cache, "league", rights_league.id, territories=["GB"])


@pytest.mark.usefixtures("gb_only")
def test_availability_map_covers_every_country(manager: Call, item: Asset) -> None:
    response = manager("GET", f"/v1/rights/{item.id}/availability")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item"] == item.id
    assert body["platform"] == "web"
    countries = body["countries"]
    assert len(countries) == len(pycountry.countries) >= 249
    assert countries["GB"] == {"allowed": True, "reason": "allowed"}
    assert countries["SE"] == {"allowed": False, "reason": "territory_not_licensed"}
    assert [code for code, status in countries.items() if status["allowed"]] == ["GB"]
    # Before the grant's window or on another platform nothing changes for a plain grant.
    assert manager("GET", f"/v1/rights/{item.id}/availability", platform="ios").json()["countries"][
        "GB"
    ]["allowed"]


def test_explain_gives_decision_reason_and_chain(
    manager: Call, rights_league: League, item: Asset, gb_only: RightsGrant
) -> None:
    denied = manager("GET", f"/v1/rights/{item.id}/explain", country="se")
    assert denied.status_code == 200, denied.text
    body = denied.json()
    assert body["allowed"] is False
    assert body["reason"] == "territory_not_licensed"
    assert body["country"] == "SE"
    assert body["message"] == "This highlight is not available in Sweden."
    assert body["grant_id"] is None
    assert body["chain"] == [
        {
            "id": gb_only.id,
            "scope": f"league:{rights_league.id}",
            "license_type": "highlights",
            "status": "approved",
        }
    ]
    allowed = manager("GET", f"/v1/rights/{item.id}/explain", country="GB").json()
    assert allowed["allowed"] is True
    assert allowed["reason"] == "allowed"
    assert allowed["grant_id"] == gb_only.id
    nowhere = manager("GET", f"/v1/rights/{item.id}/explain").json()
    assert nowhere["reason"] == "unknown_location"


def test_explain_at_a_time_outside_the_window(manager: Call, item: Asset) -> None:
    opens = datetime(2027, 1, 1, tzinfo=UTC)
    body = grant_body(
        "asset", item.id, status="approved", window={"start": {"at": opens.isoformat()}}
    )
    created(manager("POST", "/v1/rights/grants", body))
    early = manager("GET", f"/v1/rights/{item.id}/explain", country="GB", at="2026-12-31T00:00:00Z")
    assert early.json()["reason"] == "window_not_started"
    assert datetime.fromisoformat(early.json()["available_from"]) == opens
    later = manager("GET", f"/v1/rights/{item.id}/explain", country="GB", at="2027-01-02T00:00:00Z")
    assert later.json()["allowed"] is True


# --- import ----------------------------------------------------------------------------------


def test_import_creates_every_row(manager: Call, rights_league: League, item: Asset) -> None:
    rows = [
        grant_body("league", rights_league.id, territories=["GB", "IE"], status="approved"),
        grant_body("asset", item.id, territories=["GB"], status="approved"),
    ]
    response = manager("POST", "/v1/rights/grants/import", rows)
    assert response.status_code == 201, response.text
    ids = response.json()["created"]
    assert len(ids) == 2
    listed = manager("GET", "/v1/rights/grants", scope_type="asset", scope_id=item.id).json()
    assert [g["id"] for g in listed] == [ids[1]]
    assert manager("GET", f"/v1/rights/{item.id}/explain", country="GB").json()["allowed"]


@pytest.mark.parametrize(
    "bad",
    [
        {"territories": ["QQ"]},  # refused by the service
        {"territories": ["SE"], "status": "approved"},  # widens the first row
        {"license_type": "bootleg"},  # refused by the schema
    ],
)
def test_import_is_all_or_nothing(
    db: Session, manager: Call, rights_league: League, item: Asset, bad: dict[str, object]
) -> None:
    before = grants_in_db(db)
    audits = db.scalar(select(func.count()).select_from(RightsAudit))
    rows = [
        grant_body("league", rights_league.id, territories=["GB"], status="approved"),
        grant_body("league", rights_league.id, territories=["IE"]),
        grant_body("asset", item.id, **bad),
    ]
    response = manager("POST", "/v1/rights/grants/import", rows)
    assert response.status_code == 422, response.text
    db.expire_all()
    assert grants_in_db(db) == before
    assert db.scalar(select(func.count()).select_from(RightsAudit)) == audits
    listed = manager(
        "GET", "/v1/rights/grants", scope_type="league", scope_id=str(rights_league.id)
    )
    assert listed.json() == []


# --- who -------------------------------------------------------------------------------------


def test_anonymous_is_401(api: TestClient, rights_league: League, item: Asset) -> None:
    anonymous = _call(api, None)
    assert (
        anonymous("POST", "/v1/rights/grants", grant_body("league", rights_league.id)).status_code
        == 401
    )
    assert anonymous("GET", f"/v1/rights/{item.id}/availability").status_code == 401
    assert anonymous("GET", f"/v1/rights/{item.id}/explain").status_code == 401
    response = anonymous("POST", "/v1/rights/blackouts", _blackout(rights_league))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_partner_key_is_403(
    api: TestClient, rights_partner_key: str, rights_league: League, item: Asset
) -> None:
    partner = _call(api, rights_partner_key)
    response = partner("POST", "/v1/rights/grants", grant_body("league", rights_league.id))
    assert response.status_code == 403
    assert "rights_manager" in str(error(response)["message"])
    assert partner("GET", f"/v1/rights/{item.id}/availability").status_code == 403


def test_rights_manager_of_another_league_is_403(
    db: Session,
    api: TestClient,
    manager: Call,
    foreign_manager_key: str,
    rights_league: League,
    other_league: League,
    item: Asset,
) -> None:
    foreign = _call(api, foreign_manager_key)
    grant = created(manager("POST", "/v1/rights/grants", grant_body("league", rights_league.id)))
    blackout = created(manager("POST", "/v1/rights/blackouts", _blackout(rights_league)))
    before = grants_in_db(db)
    attempts = [
        foreign("POST", "/v1/rights/grants", grant_body("league", rights_league.id)),
        foreign("POST", "/v1/rights/grants", grant_body("asset", item.id)),
        foreign("POST", "/v1/rights/grants/import", [grant_body("league", rights_league.id)]),
        foreign("GET", f"/v1/rights/grants/{grant['id']}"),
        foreign("PATCH", f"/v1/rights/grants/{grant['id']}", {"status": "approved"}),
        foreign("GET", "/v1/rights/grants", scope_type="league", scope_id=str(rights_league.id)),
        foreign("GET", "/v1/rights/audit", entity="grant", entity_id=grant["id"]),
        foreign("POST", "/v1/rights/blackouts", _blackout(rights_league)),
        foreign("PUT", f"/v1/rights/blackouts/{blackout['id']}", _blackout(other_league)),
        foreign("GET", f"/v1/rights/{item.id}/availability"),
        foreign("GET", f"/v1/rights/{item.id}/explain", country="GB"),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert grants_in_db(db) == before
    assert manager("GET", f"/v1/rights/grants/{grant['id']}").json()["status"] == "pending"
    # Nor may the league's own manager move a blackout into a league it does not manage.
    moved = manager("PUT", f"/v1/rights/blackouts/{blackout['id']}", _blackout(other_league))
    assert moved.status_code == 403
    # The foreign manager does manage its own league.
    created(foreign("POST", "/v1/rights/grants", grant_body("league", other_league.id)))


def test_admin_may_manage_any_league(admin: Call, rights_league: League, item: Asset) -> None:
    grant = created(admin("POST", "/v1/rights/grants", grant_body("league", rights_league.id)))
    assert (
        admin("PATCH", f"/v1/rights/grants/{grant['id']}", {"status": "approved"}).status_code
        == 200
    )
    assert admin("GET", f"/v1/rights/{item.id}/availability").json()["countries"]["GB"]["allowed"]
    created(admin("POST", "/v1/rights/blackouts", _blackout(rights_league)))
