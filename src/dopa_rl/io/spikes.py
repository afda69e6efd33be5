"""Spike trains from sorted data, through spikeinterface (the only module of ours that imports it).

Sources: the ``units`` table of an NWB file (``read_nwb_sorting``), and sorter output that spikeinterface
reads directly: phy folders (``params.py`` + ``spike_times.npy`` + ``spike_clusters.npy``) and Kilosort
folders.  Whatever the source, the result is one :class:`SpikeTrains` mapping: unit id -> spike times in
seconds (sorted float64), plus per-unit properties.

NWB units tables without ``resolution`` (common in MatNWB/pynapple files) are read with a nominal
sampling frequency: spike *times* are preserved exactly whatever the value; only frame indices use it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["SpikeTrains", "read_spike_trains", "DEFAULT_SAMPLING_FREQUENCY"]

#: sampling frequency passed to spikeinterface when the file gives none (times are unaffected)
DEFAULT_SAMPLING_FREQUENCY = 30000.0


class SpikeTrains(Mapping):
    """Spike times in seconds by unit id, read from any source; behaves like a read-only dict.

    ``properties`` is a DataFrame indexed by unit id (e.g. ``location``, ``group``, ``quality``);
    ``sampling_frequency`` is the frame clock spikeinterface used (nominal when the file gave none);
    ``source`` says where the trains came from.
    """

    def __init__(self, trains: Mapping[Any, np.ndarray], *, properties: pd.DataFrame | None = None,
                 sampling_frequency: float | None = None, source: str = "") -> None:
        self._trains = {uid: np.sort(np.asarray(t, dtype=np.float64)) for uid, t in trains.items()}
        self.properties = properties if properties is not None else pd.DataFrame(index=list(self._trains))
        self.sampling_frequency = sampling_frequency
        self.source = source

    def __getitem__(self, unit_id: Any) -> np.ndarray:
        return self._trains[unit_id]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._trains)

    def __len__(self) -> int:
        return len(self._trains)

    def __repr__(self) -> str:
        return f"SpikeTrains({len(self)} units, {self.n_spikes} spikes, source={self.source!r})"

    @property
    def unit_ids(self) -> list[Any]:
        """Unit ids in file order."""
        return list(self._trains)

    @property
    def n_spikes(self) -> int:
        """Total number of spikes over all units."""
        return int(sum(len(t) for t in self._trains.values()))

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per spike with columns ``unit`` and ``time``."""
        units = np.concatenate([np.full(len(t), i) for i, t in enumerate(self._trains.values())]) \
            if self._trains else np.array([], dtype=int)
        ids = np.asarray(self.unit_ids, dtype=object)
        times = np.concatenate(list(self._trains.values())) if self._trains else np.array([])
        return pd.DataFrame({"unit": ids[units] if len(ids) else [], "time": times})

    @classmethod
    def from_sorting(cls, sorting: Any, source: str = "") -> "SpikeTrains":
        """Convert a spikeinterface ``BaseSorting`` (first segment) into spike times in seconds."""
        trains = {}
        for uid in sorting.unit_ids:
            key = uid.item() if hasattr(uid, "item") else uid
            trains[key] = sorting.get_unit_spike_train_in_seconds(unit_id=uid, segment_index=0)
        props = {}
        for key in sorting.get_property_keys():
            values = sorting.get_property(key)
            if values is not None and np.ndim(values) == 1:
                props[key] = values
        index = list(trains)
        frame = pd.DataFrame(props, index=index) if props else pd.DataFrame(index=index)
        return cls(trains, properties=frame, sampling_frequency=float(sorting.sampling_frequency), source=source)


def _nwb_units_resolution(path: Path, unit_table_path: str = "units") -> float | None:
    """Check the units table at ``unit_table_path`` with h5py (read-only): raise when absent/empty;
    return its resolution or None."""
    import h5py

    if not h5py.is_hdf5(path):
        raise InputError(f"{path}: not an HDF5 file, so not an NWB file")
    try:
        with h5py.File(path, "r") as f:
            units = f.get(unit_table_path.strip("/"))
            if not isinstance(units, h5py.Group):
                raise InputError(f"{path}: no units table at '{unit_table_path}'; this file has no sorted spikes there")
            n = len(units["id"]) if "id" in units else 0
            if n == 0 or "spike_times" not in units:
                raise InputError(f"{path}: units table is empty (0 units); nothing to read")
            res = units["spike_times"].attrs.get("resolution")
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read the units table ({str(exc).splitlines()[0][:150]})") from exc
    if res is None:
        return None
    res = float(np.asarray(res).ravel()[0])
    return res if np.isfinite(res) and res > 0 else None


def read_spike_trains(path: str | os.PathLike[str], *, sampling_frequency: float | None = None,
                      unit_table_path: str = "units") -> SpikeTrains:
    """Read sorted spikes from an NWB file or a phy/Kilosort folder into :class:`SpikeTrains`.

    ``sampling_frequency`` (Hz): the sorter's frame clock.  For NWB it defaults to ``1/units.resolution``
    and, when the file has no resolution, to :data:`DEFAULT_SAMPLING_FREQUENCY` (spike times are kept as
    stored either way).  Phy/Kilosort folders carry their own rate in ``params.py``.
    """
    import warnings

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import spikeinterface.extractors as se

        if path.is_dir():
            if not (path / "spike_times.npy").exists():
                raise InputError(f"{path}: not a phy/Kilosort folder (no spike_times.npy)")
            try:
                if (path / "params.py").exists() and not (path / "rez.mat").exists() \
                        and (path / "spike_clusters.npy").exists():
                    sorting = se.read_phy(path)
                else:
                    sorting = se.read_kilosort(path)
            except Exception as exc:
                raise InputError(f"{path}: cannot read sorted output ({str(exc).splitlines()[0][:150]})") from exc
            return SpikeTrains.from_sorting(sorting, source=str(path))
        res = _nwb_units_resolution(path, unit_table_path)
        if sampling_frequency is None:
            sampling_frequency = 1.0 / res if res else DEFAULT_SAMPLING_FREQUENCY
        try:
            sorting = se.read_nwb_sorting(str(path), sampling_frequency=float(sampling_frequency),
                                          unit_table_path=unit_table_path, t_start=0.0)
        except Exception as exc:
            raise InputError(f"{path}: cannot read units through spikeinterface "
                             f"({str(exc).splitlines()[0][:150]})") from exc
        return SpikeTrains.from_sorting(sorting, source=str(path))
