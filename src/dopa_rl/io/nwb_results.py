"""Analysis results in NWB: the writer behind ``result.to_nwb(nwbfile)`` and its reader.

A result (any :class:`dopa_rl.results.Result`) goes into one processing module, by default
``processing/dopa_rl_<kind>`` (``dopa_rl_fit``, ``dopa_rl_regression``...), holding three DynamicTables:

- ``parameters``: the result's main table (:meth:`~dopa_rl.results.Result.to_frame`: fitted parameters per
  subject, coefficients per regression...);
- ``provenance``: ``key``/``value`` rows (values JSON-encoded): ``kind``, how the result was made (model,
  options, method, data fingerprint, package versions...) and ``result_json``, the whole result, so
  ``cls.from_json(tables.result_json)`` rebuilds it;
- ``per_trial`` (when the result has one): per-trial values and prediction errors.

:func:`read_results` gives every such module of a file back as :class:`~dopa_rl.results.ResultTables`.
"""
from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from dopa_rl.errors import InputError
from dopa_rl.results import ResultTables

__all__ = ["add_result", "read_results", "results_from_nwbfile", "MODULE_PREFIX"]

MODULE_PREFIX = "dopa_rl_"
_PROVENANCE_KEYS = ("kind", "description", "result_json")


def _table(name: str, description: str, frame: pd.DataFrame, what: str) -> Any:
    from hdmf.common import DynamicTable, VectorData

    from dopa_rl.io.nwb_write import _nwb_value_column

    frame = frame.reset_index(drop=True)
    cols = [VectorData(name=str(c), description=f"{what}: {c}", data=_nwb_value_column(frame[c]))
            for c in frame.columns]
    return DynamicTable(name=name, description=description, columns=cols)


def add_result(nwbfile: Any, tables: ResultTables, *, name: str | None = None) -> Any:
    """Add ``tables`` (from ``result.nwb_tables()``) to the open ``nwbfile`` as a processing module and
    return it.  Refuses a name that is taken (one module per result)."""
    name = name or f"{MODULE_PREFIX}{tables.kind}"
    if name in nwbfile.processing:
        raise InputError(f"the NWB file already has a processing module {name!r}; pass another name "
                         f"(result.to_nwb(nwbfile, name=...))")
    if not len(tables.parameters.columns):
        raise InputError(f"{tables.kind} result has an empty main table; nothing to write to NWB")
    module = nwbfile.create_processing_module(name=name, description=tables.description)
    module.add(_table("parameters", f"{tables.description}: main table", tables.parameters, tables.kind))
    prov = {"kind": tables.kind, "description": tables.description, **tables.provenance,
            "result_json": tables.result_json}
    keys = list(prov)
    module.add(_table("provenance", "how the result was made (values are JSON)",
                      pd.DataFrame({"key": keys, "value": [json.dumps(prov[k], allow_nan=False) for k in keys]}),
                      "provenance"))
    if tables.per_trial is not None and len(tables.per_trial.columns):
        module.add(_table("per_trial", "per-trial values and prediction errors (rows follow the trials)",
                          tables.per_trial, "per-trial"))
    return module


def results_from_nwbfile(nwbfile: Any) -> dict[str, ResultTables]:
    """Every result module of an open NWB file, by module name."""
    from dopa_rl.io.nwb_read import table_to_frame

    out: dict[str, ResultTables] = {}
    for name, module in nwbfile.processing.items():
        if not name.startswith(MODULE_PREFIX) or "provenance" not in module.data_interfaces:
            continue
        prov_frame = table_to_frame(module["provenance"])
        prov = {str(k): json.loads(v) for k, v in zip(prov_frame["key"], prov_frame["value"])}
        meta = {k: prov.pop(k, "") for k in _PROVENANCE_KEYS}
        per_trial = table_to_frame(module["per_trial"]) if "per_trial" in module.data_interfaces else None
        out[name] = ResultTables(kind=str(meta["kind"]), description=str(meta["description"]),
                                 parameters=table_to_frame(module["parameters"]), provenance=prov,
                                 per_trial=per_trial, result_json=str(meta["result_json"]))
    return out


def read_results(path: str | os.PathLike[str]) -> dict[str, ResultTables]:
    """The analysis results stored in an NWB file (``result.to_nwb``), by processing-module name."""
    from dopa_rl.io.nwb_read import open_nwb

    with open_nwb(path) as nwbfile:
        return results_from_nwbfile(nwbfile)
