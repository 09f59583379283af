"""Initial schema: people, templates (+ crops), attendance events (+ snapshots).

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=True),
        sa.Column("group_name", sa.String(100), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("pseudonym", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("external_id", name="uq_people_external_id"),
        sa.UniqueConstraint("pseudonym", name="uq_people_pseudonym"),
    )
    op.create_index("ix_people_group", "people", ["group_name"])
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("model_id", sa.String(100), nullable=False),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_templates_model", "templates", ["model_id"])
    op.create_index("ix_templates_person", "templates", ["person_id"])
    op.create_table(
        "template_crops",
        sa.Column("template_id", sa.Integer, sa.ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="SET NULL"), nullable=True),
        sa.Column("person_ref", sa.String(32), nullable=False),
        sa.Column("ts", sa.DateTime, nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("station", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("similarity", sa.Float, nullable=False),
    )
    op.create_index("ix_events_ts", "events", ["ts"])
    op.create_index("ix_events_person_ts", "events", ["person_id", "ts"])
    op.create_table(
        "event_snapshots",
        sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event_snapshots")
    op.drop_table("events")
    op.drop_table("template_crops")
    op.drop_table("templates")
    op.drop_table("people")
