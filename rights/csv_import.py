"""Grants from a CSV sheet (the spreadsheet form of an Avails delivery).

Columns (header row required; only ``scope_type``, ``scope_id`` and ``license_type`` must
be filled): scope_type, scope_id, license_type, worldwide, territories, excluded, start,
end, start_event, start_lag_s, end_event, end_lag_s, platforms, vpn_policy, status,
exclusive, licensee, contract_id, max_clip_s, max_total_s_per_match, min_delay_after_live_s.
List cells separate codes with spaces, commas or semicolons.
"""

from __future__ import annotations

import csv
import io
import re

from pydantic import ValidationError

from core.errors import InvalidInput
from rights.schemas import GrantIn

MAX_ROWS = 5000
_SPLIT = re.compile(r"[\s,;]+")
_LIMITS = ("max_clip_s", "max_total_s_per_match", "min_delay_after_live_s")


def _list(cell: str | None) -> list[str]:
    return [code for code in _SPLIT.split(cell or "") if code]


def _edge(row: dict[str, str], side: str) -> dict[str, object] | None:
    if row.get(side):
        return {"at": row[side]}
    if row.get(f"{side}_event"):
        return {"event": row[f"{side}_event"], "lag_s": row.get(f"{side}_lag_s") or 0}
    return None


def _grant(row: dict[str, str]) -> GrantIn:
    data: dict[str, object] = {
        key: value for key, value in row.items()
        if value and key in ("scope_type", "scope_id", "license_type", "vpn_policy", "status",
                             "licensee", "contract_id", "worldwide", "exclusive")
    }  # fmt: skip
    data["territories"] = _list(row.get("territories"))
    data["excluded"] = _list(row.get("excluded"))
    data["window"] = {"start": _edge(row, "start"), "end": _edge(row, "end")}
    if row.get("platforms"):
        data["platforms"] = _list(row["platforms"])
    data["clip_limits"] = {k: row[k] for k in _LIMITS if row.get(k)}
    return GrantIn.model_validate(data)


def parse_csv(text: str) -> list[GrantIn]:
    """Every row as a grant to create; InvalidInput naming each bad row, or none at all."""
    reader = csv.DictReader(io.StringIO(text))
    grants: list[GrantIn] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=2):  # row 1 is the header
        if number > MAX_ROWS + 1:
            raise InvalidInput(f"at most {MAX_ROWS} rows per import")
        try:
            grants.append(_grant({k.strip(): (v or "").strip() for k, v in row.items() if k}))
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            problems.append(f"row {number}: invalid {fields}")
    if problems:
        raise InvalidInput("; ".join(problems[:20]))
    if not grants:
        raise InvalidInput("the sheet has no rows")
    return grants
