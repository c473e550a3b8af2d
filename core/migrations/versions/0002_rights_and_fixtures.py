"""rights and fixtures

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 23:35:37.524205
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rights_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rights_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rights_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rights_audit_entity_id"), ["entity_id"], unique=False)

    op.create_table(
        "rights_blackouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope_type", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=32), nullable=False),
        sa.Column("countries", sa.JSON(), nullable=False),
        sa.Column("subdivisions", sa.JSON(), nullable=False),
        sa.Column("networks", sa.JSON(), nullable=False),
        sa.Column("platforms", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("alternate_item", sa.String(length=32), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rights_blackouts", schema=None) as batch_op:
        batch_op.create_index("ix_rights_blackouts_scope", ["scope_type", "scope_id"], unique=False)

    op.create_table(
        "rights_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope_type", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=32), nullable=False),
        sa.Column("license_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("worldwide", sa.Boolean(), nullable=False),
        sa.Column("territories", sa.JSON(), nullable=False),
        sa.Column("excluded", sa.JSON(), nullable=False),
        sa.Column("territory_groups", sa.JSON(), nullable=False),
        sa.Column("window", sa.JSON(), nullable=False),
        sa.Column("platforms", sa.JSON(), nullable=True),
        sa.Column("exclusive", sa.Boolean(), nullable=False),
        sa.Column("vpn_policy", sa.String(length=32), nullable=False),
        sa.Column("clip_limits", sa.JSON(), nullable=False),
        sa.Column("licensee", sa.String(length=200), nullable=False),
        sa.Column("contract_id", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rights_grants", schema=None) as batch_op:
        batch_op.create_index("ix_rights_grants_scope", ["scope_type", "scope_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rights_grants_status"), ["status"], unique=False)

    op.create_table(
        "competitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("league_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["league_id"], ["leagues.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("league_id", "slug"),
    )
    with op.batch_alter_table("competitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_competitions_league_id"), ["league_id"], unique=False)

    op.create_table(
        "seasons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("competition_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["competition_id"], ["competitions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("seasons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_seasons_competition_id"), ["competition_id"], unique=False
        )

    op.create_table(
        "matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("season_id", sa.Integer(), nullable=False),
        sa.Column("home", sa.String(length=100), nullable=False),
        sa.Column("away", sa.String(length=100), nullable=False),
        sa.Column("kickoff", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_whistle", sa.DateTime(timezone=True), nullable=True),
        sa.Column("broadcast_end", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["season_id"], ["seasons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matches_season_id"), ["season_id"], unique=False)

    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("match_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_assets_match_id"), ["match_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_assets_match_id", "matches", ["match_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_constraint("fk_assets_match_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_assets_match_id"))
        batch_op.drop_column("match_id")

    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matches_season_id"))

    op.drop_table("matches")
    with op.batch_alter_table("seasons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seasons_competition_id"))

    op.drop_table("seasons")
    with op.batch_alter_table("competitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_competitions_league_id"))

    op.drop_table("competitions")
    with op.batch_alter_table("rights_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rights_grants_status"))
        batch_op.drop_index("ix_rights_grants_scope")

    op.drop_table("rights_grants")
    with op.batch_alter_table("rights_blackouts", schema=None) as batch_op:
        batch_op.drop_index("ix_rights_blackouts_scope")

    op.drop_table("rights_blackouts")
    with op.batch_alter_table("rights_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rights_audit_entity_id"))
        batch_op.drop_index(batch_op.f("ix_rights_audit_at"))

    op.drop_table("rights_audit")
