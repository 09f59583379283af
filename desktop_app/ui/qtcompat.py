"""Workarounds for bugs of the installed PySide6, each detected at run time so a fixed release pays nothing.

PySide6 6.12.0 returns singletons without taking a reference:

- ``SignalInstance.emit`` returns ``True``: every emit from Python takes one reference from ``True``;
- methods that are Qt slots and return nothing (``QWidget.update``, ``QLabel.setText``, ``QTimer.start`` and
  ``stop``, ``QCoreApplication.processEvents``...) return ``None``: every call takes one reference from ``None``.

On Python 3.11 these objects are ordinary reference-counted objects: once their count reaches zero the
interpreter aborts ("Fatal Python error: bool_dealloc" / "none_dealloc"). The live view calls ``update()`` for
every frame and emits several signals, so a kiosk would abort after minutes to hours. When the probes below see
either leak, :func:`guard_singletons` gives ``None``, ``True`` and ``False`` a reference cushion far larger than
any run can take away, which is what Python 3.12+ does for them anyway (immortal objects); :func:`emit` also
gives back the reference each emit takes. Every module of ``desktop_app/ui`` imports this one first.
"""

from __future__ import annotations

import ctypes
import sys
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

_PROBES = 64
CUSHION = 1 << 40  # references added to each singleton: ~35 years at 1000 leaked references per second


class _Probe(QObject):
    ping = Signal()


def _taken(obj: Any, action) -> int:
    """References of ``obj`` that ``action`` takes away per call (0 when it does not leak)."""
    before = sys.getrefcount(obj)
    for _ in range(_PROBES):
        action()
    taken = before - sys.getrefcount(obj)
    for _ in range(max(taken, 0)):  # repair what the probe itself took
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    return max(0, round(taken / _PROBES))


_probe = _Probe()
_timer = QTimer()
TRUE_REFS_TAKEN_PER_EMIT = _taken(True, _probe.ping.emit)
NONE_REFS_TAKEN_PER_SLOT_CALL = _taken(None, _timer.stop)
del _probe, _timer

_guarded = False


def guard_singletons() -> bool:
    """Make None, True and False effectively immortal on CPython < 3.12 when this PySide6 leaks their
    references; True when the cushion was added (once per process)."""
    global _guarded
    if _guarded or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _guarded
    if not (TRUE_REFS_TAKEN_PER_EMIT or NONE_REFS_TAKEN_PER_SLOT_CALL):
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every CPython object (Py_ssize_t); the GIL is held here
        ctypes.c_ssize_t.from_address(id(obj)).value += CUSHION
    _guarded = True
    return True


guard_singletons()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, giving back the reference to ``True`` that leaking PySide6 releases take."""
    signal.emit(*args)
    for _ in range(TRUE_REFS_TAKEN_PER_EMIT):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))


def emitter(signal: Any):
    """A callable that emits ``signal`` (for callbacks handed to the headless core)."""
    return partial(emit, signal)
