"""The one family of results: every analysis result has the same shape.

Fit, regression, comparison, distributional and kernel results all offer

* ``summary()`` -- a plain-text report;
* ``to_frame()`` -- the main table (one row per subject, model, regression or lag);
* ``to_dict()`` / ``from_dict()`` and ``to_json()`` / ``from_json()`` -- an exact round trip through JSON
  (non-finite numbers are written as ``null`` and come back as NaN);
* ``plot(**options)`` -- a :class:`matplotlib.figure.Figure` that names what it shows, with units;
* ``to_nwb(nwbfile)`` -- the parameters with their provenance and the per-trial table in a processing
  module of an open ``pynwb.NWBFile``; :func:`dopa_rl.io.nwb.read_results` gives them back.

Results never import :mod:`dopa_rl.io` (DESIGN section 2: ``fit`` uses ``models`` only, and ``io`` is the one
pynwb importer).  They take part in NWB through a small protocol instead: :meth:`Result.nwb_tables` gives
pure tables (:class:`ResultTables`), and the writer in :mod:`dopa_rl.io.nwb_results` puts them in the file.
The package root wires the two together (:func:`use_io`), so ``to_nwb`` and ``to_json(path)`` work
wherever ``dopa_rl`` is imported, and this module depends on nothing of ours but :mod:`dopa_rl.errors`.
"""
from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dopa_rl.errors import InputError

if TYPE_CHECKING:  # numpy and pandas are imported where used: the package root imports this module
    import pandas as pd

__all__ = ["Result", "ResultTables", "jsonable", "use_io"]

#: "module:attribute" of the functions that write files and NWB for results (set by :func:`use_io`)
_IO: dict[str, str] = {}


def use_io(*, write_text: str, add_to_nwb: str) -> None:
    """Name the functions results use to write files and NWB, as ``"module:function"``.

    Called once by the package root (``dopa_rl/__init__.py``) with the writers of :mod:`dopa_rl.io`; they are
    imported on first use only.

    Parameters
    ----------
    write_text : str
        ``write_text(path, text)`` writes a file atomically.
    add_to_nwb : str
        ``add_to_nwb(nwbfile, tables)`` adds a :class:`ResultTables` to an open NWB file.
    """
    _IO.update(write_text=write_text, add_to_nwb=add_to_nwb)


def _io(name: str):
    try:
        module, attr = _IO[name].split(":")
    except KeyError:
        raise RuntimeError(f"no {name} writer registered for results (dopa_rl.results.use_io)") from None
    return getattr(importlib.import_module(module), attr)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types.

    Parameters
    ----------
    value : object
        Nested dicts, lists, tuples, numpy scalars and arrays, numbers, strings.

    Returns
    -------
    object
        The same with numpy scalars and arrays as Python numbers and lists and non-finite floats as None, so
        ``json.dumps(..., allow_nan=False)`` accepts it (the output is always valid JSON).
    """
    import numpy as np
    import pandas as pd

    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


@dataclass
class ResultTables:
    """What a result puts into NWB: pure tables, no pynwb objects.

    ``kind`` names the result class (``"fit"``, ``"regression"``, ``"comparison"``...); ``parameters`` is the
    main table (:meth:`Result.to_frame`, index as a column); ``provenance`` says how it was made (model,
    options, method, data fingerprint, versions...); ``per_trial`` holds the per-trial values and
    prediction errors where the result has them; ``result_json`` is :meth:`Result.to_json` so the
    whole result can be rebuilt from the file (``cls.from_json(tables.result_json)``).
    """

    kind: str
    description: str
    parameters: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)
    per_trial: pd.DataFrame | None = None
    result_json: str = ""


#: the methods every result has, documented once in :class:`Result`
_CONTRACT = ("to_dict", "from_dict", "to_frame", "summary", "per_trial", "plot", "to_nwb")


class Result:
    """Base of every result class.  Subclasses define :attr:`kind`, :attr:`schema`, :meth:`to_dict`,
    :meth:`from_dict`, :meth:`to_frame`, :meth:`summary` and :meth:`_draw`; they may override
    :meth:`per_trial` (default: none) and :attr:`provenance`.
    """

    kind: ClassVar[str] = "result"
    #: the ``schema`` key of :meth:`to_dict` (checked by :meth:`from_dict` implementations)
    schema: ClassVar[str] = "dopa_rl.result/1"
    #: one line on what the result is, written as the NWB description
    description: ClassVar[str] = "dopa_rl analysis result"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A method a result overrides without a docstring keeps the family's (the contract is written once)."""
        super().__init_subclass__(**kwargs)
        for name in _CONTRACT:
            own = cls.__dict__.get(name)
            target = getattr(own, "__func__", own)
            if target is not None and not getattr(target, "__doc__", None):
                base = next((getattr(b.__dict__[name], "__func__", b.__dict__[name]) for b in cls.__mro__[1:]
                             if name in b.__dict__), None)
                if base is not None and base.__doc__:
                    target.__doc__ = base.__doc__

    # -- to be defined by each result -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """Everything in the result as JSON-able data.

        Returns
        -------
        dict
            The result's data with its ``schema`` key; :func:`jsonable` makes it JSON.
        """
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        """Rebuild a result from :meth:`to_dict`.

        Parameters
        ----------
        d : dict
            What :meth:`to_dict` gave (or its JSON read back).

        Returns
        -------
        Result
            The result, as far as :meth:`to_dict` keeps it (a regression's statsmodels results are not kept).
        """
        raise NotImplementedError

    def to_frame(self) -> pd.DataFrame:
        """The main table of the result.

        Returns
        -------
        pandas.DataFrame
            One row per subject, unit, model or event as the result has them.
        """
        raise NotImplementedError

    def summary(self) -> str:
        """A plain-text report.

        Returns
        -------
        str
            What the result found, with its warnings, as ``dopa-rl`` prints it.
        """
        raise NotImplementedError

    def _draw(self, fig, **options) -> None:
        raise NotImplementedError

    def per_trial(self) -> pd.DataFrame | None:
        """The per-trial values and prediction errors, where the result keeps them.

        Returns
        -------
        pandas.DataFrame or None
            One row per trial (None when the result keeps none).
        """
        return None

    @property
    def provenance_info(self) -> dict[str, Any]:
        """How the result was made (written with the parameters to NWB); default: the ``provenance``
        attribute when the result has one."""
        return dict(getattr(self, "provenance", None) or {})

    # -- shared ---------------------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.summary()

    def to_json(self, path: str | os.PathLike[str] | None = None, indent: int = 2) -> str:
        """The result as JSON text.

        Parameters
        ----------
        path : str or os.PathLike, optional
            Also write the text there, atomically (a failed write leaves no half file).
        indent : int or None
            Indentation of the JSON text (None: one line).

        Returns
        -------
        str
            :meth:`to_dict` as JSON, non-finite numbers as ``null`` (always valid JSON).
        """
        text = json.dumps(jsonable(self.to_dict()), indent=indent, allow_nan=False)
        if path is not None:
            _io("write_text")(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> "Result":
        """Read a result written by :meth:`to_json`.

        Parameters
        ----------
        text_or_path : str or os.PathLike
            JSON text, or the path of a file holding it.
        *args, **kwargs
            Passed on to :meth:`from_dict` (a fit result takes the model).

        Returns
        -------
        Result
            The result, equal to the one written (``from_json(r.to_json()).to_dict() == r.to_dict()``).

        Raises
        ------
        InputError
            No such file, not JSON, or not a result of this kind.
        """
        text = str(text_or_path)
        if isinstance(text_or_path, os.PathLike) or not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            if not path.is_file():
                raise InputError(f"{path}: no such file")
            text = path.read_text(encoding="utf-8")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{cls.kind} result is not JSON ({exc})") from None
        if not isinstance(d, dict):
            raise InputError(f"not a dopa_rl {cls.kind} result (JSON {type(d).__name__}, not an object)")
        return cls.from_dict(d, *args, **kwargs)

    def plot(self, **options: Any):
        """A figure of the result, naming what it shows with units.

        Parameters
        ----------
        **options
            ``figsize`` and the options of the result's figure (a kernel result takes ``truth``).

        Returns
        -------
        matplotlib.figure.Figure
            Drawn headless (no display); save it with ``fig.savefig(path)``.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=options.pop("figsize", (6.4, 4.2)), dpi=110, layout="constrained")
        self._draw(fig, **options)
        return fig

    def nwb_tables(self) -> ResultTables:
        """The result as pure tables for NWB (see :class:`ResultTables`)."""
        import pandas as pd

        frame = self.to_frame()
        if frame.index.name is not None or not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()
        return ResultTables(kind=self.kind, description=self.description, parameters=frame,
                            provenance=jsonable(self.provenance_info), per_trial=self.per_trial(),
                            result_json=self.to_json(indent=None))

    def to_nwb(self, nwbfile: Any, *, name: str | None = None) -> Any:
        """Add the result to an NWB file.

        Parameters
        ----------
        nwbfile : pynwb.NWBFile
            An open, writable file (in memory or being written).
        name : str, optional
            Name of the processing module (default ``"dopa_rl_<kind>"``); a taken name is refused.

        Returns
        -------
        pynwb.base.ProcessingModule
            The module, holding ``parameters`` (the main table), ``provenance`` (how the result was made and
            the whole result as JSON) and, where the result has them, the ``per_trial`` values and
            prediction errors.  :func:`dopa_rl.io.nwb.read_results` gives them back.
        """
        return _io("add_to_nwb")(nwbfile, self.nwb_tables(), name=name)
