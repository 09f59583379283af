"""The kinds of attendance event: a plain enum that the rules (attendance/rules.py) and the store's event table
(storage/) both use, so that the rules do not import the ORM."""

from __future__ import annotations

import enum


class EventKind(enum.StrEnum):
    CHECK_IN = "check-in"
    CHECK_OUT = "check-out"
    SEEN = "seen"  # written by earlier versions only (a check-out rewritten later); events are now final

