"""Ahead-of-time compiled RW choice kernels: small fits without loading numba.

Loading numba and its cached kernels costs ~0.4-0.8 s in every process (numba's own modules and typing
registries, not the kernels), more than a 20-subject fit takes.  ``python -m dopa_rl.models.aot`` (run by
``make venv`` after installing) compiles the serial drivers of every RW choice variant
(:mod:`dopa_rl.models._choice_kernels`, the same source the JIT runs) with ``numba.pycc`` into an extension
module next to this file, plus a stamp naming the hash of the kernels' source and the numpy/numba versions.
:func:`load` imports that module only when the stamp matches the source and versions here, so an edit to
the kernels is never served stale; without it everything runs on the numba JIT as before.  The extension
module needs numpy only: a process that fits small jobs through it never imports numba.  The folder is the
package directory, or ``DOPA_RL_AOT_DIR`` when set (for an installation whose package is read-only).
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path

__all__ = ["MODULE", "source_stamp", "load", "build", "main"]

MODULE = "_choice_aot"
_HERE = Path(__file__).resolve().parent
_SOURCES = ("_choice_kernels.py", "observations.py")
_loaded: dict = {}


def source_stamp() -> dict:
    """What the compiled module must have been built from: the kernels' source hash and library versions."""
    import numpy

    h = hashlib.sha256()
    for name in _SOURCES:
        h.update((_HERE / name).read_bytes())
    try:
        from importlib.metadata import version

        numba_version = version("numba")
    except Exception:  # pragma: no cover - numba is a dependency
        numba_version = "?"
    return {"source": h.hexdigest(), "numpy": numpy.__version__, "numba": numba_version,
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}


def _folder(folder) -> Path:
    return Path(folder or os.environ.get("DOPA_RL_AOT_DIR") or _HERE)


def _stamp_path(folder: Path) -> Path:
    return folder / f"{MODULE}.json"


def load(folder: Path | None = None):
    """The compiled module, or None when it is absent or was built from other sources or versions."""
    folder = _folder(folder)
    key = str(folder)
    if key in _loaded:
        return _loaded[key]
    mod = None
    try:
        stamp = json.loads(_stamp_path(folder).read_text(encoding="utf-8"))
        if stamp == source_stamp():
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = folder / f"{MODULE}{suffix}"
                if path.exists():
                    spec = importlib.util.spec_from_file_location(f"dopa_rl.models.{MODULE}", path)
                    mod = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(mod)
                    break
    except (OSError, ValueError, ImportError):
        mod = None
    _loaded[key] = mod
    return mod


def build(folder: Path | None = None) -> Path:
    """Compile every variant's serial driver (value, value + gradient) into ``folder`` (default:
    ``DOPA_RL_AOT_DIR`` or this package directory); returns the module's path.  Needs numba and a C compiler."""
    import warnings

    from numba import types as nt

    from dopa_rl.models._choice_kernels import KERNELS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # numba.pycc announces its deprecation
        from numba.pycc import CC

    folder = _folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cc = CC(MODULE)
    cc.output_dir = str(folder)
    cc.verbose = False
    f8_2 = nt.Array(nt.float64, 2, "A")
    args = (f8_2, nt.Array(nt.int64, 1, "A"), nt.Array(nt.int64, 2, "A"), f8_2, nt.Array(nt.boolean, 2, "A"),
            nt.Array(nt.int64, 1, "A"), nt.int64, nt.float64)
    for name, (serial, _parallel) in KERNELS.items():
        ret = nt.Tuple((nt.Array(nt.float64, 1, "C"), nt.Array(nt.float64, 2, "C"))) if name.startswith("g") \
            else nt.Array(nt.float64, 1, "C")
        cc.export(name, ret(*args))(serial.py_func)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cc.compile()
    _stamp_path(folder).write_text(json.dumps(source_stamp(), indent=1) + "\n", encoding="utf-8")
    _loaded.pop(str(folder), None)
    return folder / Path(cc.output_file).name


def main(argv=None) -> int:
    """``python -m dopa_rl.models.aot [--dir DIR] [--check]``: build the module (or only check it is current)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dopa_rl.models.aot", description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help="where to write the module (default: the package)")
    ap.add_argument("--check", action="store_true", help="only say whether a current module is there (exit 1 if not)")
    args = ap.parse_args(argv)
    if args.check:
        ok = load(args.dir) is not None
        print("ahead-of-time kernels: " + ("current" if ok else "absent or stale (run python -m dopa_rl.models.aot)"))
        return 0 if ok else 1
    path = build(args.dir)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
