"""Subcommands of ``python manage.py otc``, one module each, discovered automatically
(the module contract is in docs/otc.md#commands).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["discover"]


def discover() -> dict[str, ModuleType]:
    """Subcommand name → module, for every module here that defines ``NAME``."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda item: item.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        if name:
            if name in found:
                raise RuntimeError(f"otc subcommand {name!r} is defined twice")
            found[name] = module
    return found
