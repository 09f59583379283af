"""Workarounds for bugs of the installed PySide6, each detected at run time so a fixed release pays nothing.

PySide6 6.12.0: ``SignalInstance.emit`` returns ``True`` without taking a reference, so every emit from Python
takes one reference away from the ``True`` singleton. After a few thousand emits (a minute of video at 30 FPS
with a few signals per frame) Python 3.11 frees ``True`` and aborts with "Fatal Python error: bool_dealloc".
:func:`emit` emits and gives the reference back when (and only when) the probe below saw the leak.
Every emit in ``desktop_app/ui`` goes through it.
"""

from __future__ import annotations

import ctypes
import sys
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, Signal

_PROBES = 64


class _Probe(QObject):
    ping = Signal()


def _true_refs_taken_per_emit() -> int:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.ping.emit()
    taken = before - sys.getrefcount(True)
    for _ in range(max(taken, 0)):  # repair what the probe itself took
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return max(0, round(taken / _PROBES))


TRUE_REFS_TAKEN_PER_EMIT = _true_refs_taken_per_emit()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, keeping the interpreter's ``True`` alive on PySide6 releases that leak it."""
    signal.emit(*args)
    for _ in range(TRUE_REFS_TAKEN_PER_EMIT):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))


def emitter(signal: Any):
    """A callable that emits ``signal`` (for callbacks handed to the headless core)."""
    return partial(emit, signal)
