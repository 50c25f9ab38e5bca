"""Subcommands of ``python manage.py otc``, one module each, discovered automatically.

A subcommand module in this package defines:

* ``NAME`` — the subcommand word (``otc NAME ...``);
* ``HELP`` — one line for ``otc --help``;
* ``add_arguments(parser)`` — its options, on an argparse sub-parser;
* ``run(command, options)`` — does the work; ``command`` is the Django ``BaseCommand``
  (use ``command.stdout`` / ``command.style``), ``options`` the parsed options. Raise
  ``CommandError`` with a clear message for bad input.

Adding a subcommand is adding a file here; nothing else needs to change.
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
