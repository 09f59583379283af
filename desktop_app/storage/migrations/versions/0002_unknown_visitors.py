"""The unknown-visitor log: faces that stayed unknown over a whole track (+ an optional snapshot each).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
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
        "unknown_visitors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.DateTime, nullable=False),
        sa.Column("station", sa.String(100), nullable=False),
        sa.Column("similarity", sa.Float, nullable=True),
        sa.Column("candidate_id", sa.Integer, sa.ForeignKey("people.id", ondelete="SET NULL"), nullable=True),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_index("ix_unknown_visitors_ts", "unknown_visitors", ["ts"])
    op.create_index("ix_unknown_visitors_candidate", "unknown_visitors", ["candidate_id"])
    op.create_table(
        "unknown_snapshots",
        sa.Column("visitor_id", sa.Integer, sa.ForeignKey("unknown_visitors.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("unknown_snapshots")
    op.drop_index("ix_unknown_visitors_candidate", table_name="unknown_visitors")
    op.drop_index("ix_unknown_visitors_ts", table_name="unknown_visitors")
    op.drop_table("unknown_visitors")
