"""A module imported on first attribute access, so listing models never loads numba or pandas.

``kernels = lazy_module("dopa_rl.models.kernels")`` behaves like the module once used; until then nothing is
imported (``dopa-rl models`` and ``--help`` stay fast: no numba import, no kernel compilation).
"""
from __future__ import annotations

import importlib
from types import ModuleType


class _LazyModule:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        module: ModuleType = importlib.import_module(self._name)  # cached by sys.modules after the first call
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"


def lazy_module(name: str):
    """A stand-in for ``import name`` that imports on first use."""
    return _LazyModule(name)
