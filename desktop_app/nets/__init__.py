"""The paper's networks in PyTorch (training and analysis only; the app never imports this).

Every net is registered by name with :func:`register_net` and built with :func:`create_net`.
Importing this package requires torch (the ``train`` extra).
"""

from desktop_app.nets import analysis as _analysis  # noqa: F401,E402

# Importing the modules registers their nets.
from desktop_app.nets import fdfacenet as _fdfacenet  # noqa: F401,E402
from desktop_app.nets import mobilefacenet as _mobilefacenet  # noqa: F401,E402
from desktop_app.nets import shufflefacenet as _shufflefacenet  # noqa: F401,E402
from desktop_app.nets.registry import NetSpec, create_net, get_spec, list_nets, register_net

__all__ = ["NetSpec", "create_net", "get_spec", "list_nets", "register_net"]
