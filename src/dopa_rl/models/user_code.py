"""The one loader of user code: models (``--model FILE.py:NAME``) and live-session policies
(``policy.function = "file.py:function"``) are named the same way and loaded here.

A name is ``WHERE:ATTR``, where ``WHERE`` is a Python file (``my_models.py``, a path) or an importable module
(``lab_models.bandits``).  A file is executed once per process (later loads reuse the module) under a name
that numba and pickling can look functions up by.  Every failure is one :class:`~dopa_rl.errors.InputError`
line saying which file or module and why; callers put their own prefix in front ("model 'x.py:M': ...").
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from dopa_rl.errors import InputError

__all__ = ["split_spec", "load_user_module", "load_user_function"]

_modules: dict[str, ModuleType] = {}     # resolved file path -> its module


def split_spec(spec: str, what: str = "NAME") -> tuple[str, str]:
    """``("my_models.py", "MODEL")`` from ``"my_models.py:MODEL"``; an InputError for anything else."""
    where, _, attr = str(spec).rpartition(":")
    if not where or not attr:
        raise InputError(f"write FILE.py:{what} or package.module:{what}")
    return where, attr


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def load_user_module(where: str, base_dir: Path | None = None) -> ModuleType:
    """The module of a Python file (relative files looked up from ``base_dir`` when given) or an importable
    module name."""
    if _is_file(where):
        path = Path(where)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise InputError(f"file {path} not found")
        key = str(path.resolve())
        if key not in _modules:
            name = "dopa_rl_user_" + re.sub(r"\W", "_", path.stem) + f"_{len(_modules)}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # numba and pickling look functions up by module
            try:
                spec.loader.exec_module(module)
            except InputError:
                del sys.modules[name]
                raise
            except Exception as exc:  # the user's file fails: one line naming it
                del sys.modules[name]
                raise InputError(f"{path} failed to load: {type(exc).__name__}: {exc}") from exc
            _modules[key] = module
        return _modules[key]
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and (where == exc.name or where.startswith(exc.name + ".")):
            raise InputError(f"no module named {exc.name!r} (is it installed, or on PYTHONPATH?)") from exc
        raise InputError(f"module {where} failed to load: {type(exc).__name__}: {exc}") from exc
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"module {where} failed to load: {type(exc).__name__}: {exc}") from exc


def load_user_function(spec: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """The function of ``module:function`` or ``file.py:function`` (a relative file is looked up from
    ``base_dir``)."""
    where, attr = split_spec(spec, "function")
    fn = getattr(load_user_module(where, base_dir), attr, None)
    if not callable(fn):
        raise InputError(f"{where} has no function {attr!r}")
    return fn
