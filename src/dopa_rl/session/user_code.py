"""User code named in a session config: ``module:function`` or ``file.py:function`` (the closed-loop policy).

Loaded by the config's validation (so a missing module is reported before anything is sent) and by the
policy; this module imports nothing else of the session, so neither imports the other for it.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dopa_rl.errors import InputError


def load_user_function(spec: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """``module:function`` or ``file.py:function`` (a relative file is looked up from ``base_dir``)."""
    if ":" not in spec:
        raise InputError("must be module:function or file.py:function")
    mod_name, _, fn_name = spec.rpartition(":")
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise InputError(f"file {path} does not exist")
        name = f"dopa_rl_user_policy_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            module = sys.modules[name]
        else:
            s = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(s)
            try:
                s.loader.exec_module(module)
            except Exception as exc:
                raise InputError(f"importing {path} failed ({type(exc).__name__}: {exc})") from None
            sys.modules[name] = module
    else:
        try:
            module = importlib.import_module(mod_name)
        except ImportError as exc:
            raise InputError(f"no module named {mod_name!r} ({exc}); install it or give file.py:function") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise InputError(f"{mod_name} has no function {fn_name!r}")
    return fn
