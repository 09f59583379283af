"""The PySide6 desktop app: the only package that imports Qt. The headless core below it never does.

:mod:`desktop_app.ui.qtcompat` is imported first: it guards against the reference leaks of PySide6 6.12.0 before
any other Qt call is made.
"""

from desktop_app.ui import qtcompat as _qtcompat  # noqa: F401
