"""Read fiber photometry from NWB: ndx-fiber-photometry series and plain TimeSeries, chosen by name.

Where series are looked for: ``acquisition`` and every ``processing`` module (including series nested in
containers such as ``Fluorescence`` or ``BehavioralTimeSeries``).  Values always come through
``get_data_in_units()`` (real files store ADC counts with a ``conversion`` factor) and times through
``get_timestamps()`` (rate + starting time or explicit timestamps, negative times allowed).

Channels of a ``FiberPhotometryResponseSeries`` are identified by the excitation wavelength and
indicator in its ``FiberPhotometryTable`` rows, never by column order: the isosbestic channel is excited
at 400-420 nm; a red movement-control fluorophore (tdTomato, mCherry...) is also a control channel.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.io import nwb_legacy as legacy
from dopa_rl.io.nwb_read import open_nwb
from dopa_rl.io.nwb_types import Photometry

__all__ = ["read_photometry", "photometry_from_nwbfile", "find_time_series", "name_has_word", "photometry_channels",
           "Channel", "ISOSBESTIC_NM", "CONTROL_FLUOROPHORES"]

ISOSBESTIC_NM = (395.0, 425.0)
CONTROL_FLUOROPHORES = ("tdtomato", "mcherry", "rfp", "mscarlet", "isosbestic", "control")
_SIGNAL_WORDS = frozenset({"photometry", "fiber", "fibre", "gcamp", "dlight", "grab", "dff", "df", "dopamine",
                           "fluor", "fluorescence", "465", "470", "490", "signal", "fp"})
_CONTROL_WORDS = frozenset({"isosbestic", "control", "iso", "405", "415", "410", "tdtomato", "red", "uv",
                            "reference"})


def name_has_word(path: str, words: frozenset[str]) -> bool:
    """True when the last part of ``path`` has one of ``words`` as a token: ``"GCaMP6f_470nm"`` ->
    gcamp, 6, f, 470, nm; CamelCase words count too (``"ReferenceDfOverF"`` -> reference, df, over, f).
    Whole tokens only, so "filtered" does not match "red"."""
    name = path.rsplit("/", 1)[-1]
    tokens = set(re.findall(r"[a-z]+|\d+", name.lower()))
    tokens.update(t.lower() for t in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name))
    return any(t in words for t in tokens)
_FPRS = {"FiberPhotometryResponseSeries", "RoiResponseSeries"}


@dataclass
class Channel:
    """One column of a photometry series: its index and, when the file says, wavelengths and indicator."""

    column: int
    excitation_nm: float | None = None
    emission_nm: float | None = None
    indicator: str | None = None
    location: str | None = None

    @property
    def is_control(self) -> bool:
        """True for an isosbestic (400-420 nm) or a movement-control fluorophore channel."""
        if self.excitation_nm is not None and ISOSBESTIC_NM[0] <= self.excitation_nm <= ISOSBESTIC_NM[1]:
            return True
        label = (self.indicator or "").lower()
        return any(w in label for w in CONTROL_FLUOROPHORES)


def find_time_series(nwbfile: Any) -> dict[str, Any]:
    """Every TimeSeries in acquisition and processing, by path (``acquisition/x``, ``processing/m/x``)."""
    from pynwb import TimeSeries

    found: dict[str, Any] = {}

    def visit(prefix: str, name: str, obj: Any) -> None:
        if isinstance(obj, TimeSeries):
            found[f"{prefix}/{name}"] = obj
            return
        for attr in ("time_series", "roi_response_series", "spatial_series"):
            children = getattr(obj, attr, None)
            if isinstance(children, dict) or hasattr(children, "items"):
                for cname, child in children.items():
                    visit(f"{prefix}/{name}", cname, child)

    for name, obj in nwbfile.acquisition.items():
        visit("acquisition", name, obj)
    for mname, mod in nwbfile.processing.items():
        for name, obj in mod.data_interfaces.items():
            visit(f"processing/{mname}", name, obj)
    return found


def photometry_channels(series: Any) -> list[Channel]:
    """The channels (columns) of a series with the wavelengths, indicator and location its metadata gives.

    Where each layout keeps them: ndx-fiber-photometry 0.2 in the ``FiberPhotometryTable`` row the
    series' ``fiber_photometry_table_region`` points to (wavelength columns, an ``Indicator`` with a
    label); 0.1 on the devices that row references (``ExcitationSource.excitation_wavelength_in_nm``,
    ``Photodetector.detected_wavelength_in_nm``, ``Indicator.label``); the older ndx-photometry in the
    rows of its ``excitation_sources`` (``peak_wavelength``), ``photodetectors`` and ``fluorophores``
    (``label``) tables; a ``RoiResponseSeries`` in the row of its ``rois`` table, which may point on to an
    excitation-source table.  A region of one row describes a one-column series; otherwise row ``i`` is
    column ``i``, and a column without its own row has no metadata (never borrowed from another)."""
    shape = getattr(series.data, "shape", None) or np.shape(series.data)
    n_cols = 1 if len(shape) < 2 else int(shape[1])
    channels = [Channel(i) for i in range(n_cols)]
    regions = [("row", getattr(series, attr, None)) for attr in ("fiber_photometry_table_region", "rois", "fibers")]
    regions += [(role, getattr(series, attr, None)) for role, attr in
                (("excitation", "excitation_sources"), ("emission", "photodetectors"), ("indicator", "fluorophores"))]
    for role, region in regions:
        if region is None or not hasattr(region, "table"):
            continue
        rows = np.asarray(region.data[:], dtype=int).ravel()
        if len(rows) != n_cols:
            continue  # one region for several columns (or columns without rows): no column can be told
        for ch, row in zip(channels, rows):
            _fill(ch, region.table, int(row), role)
    return channels


def _fill(ch: Channel, table: Any, row: int, role: str) -> None:
    """Fill what ``ch`` still lacks from row ``row`` of ``table`` (``role``: what a bare
    ``peak_wavelength`` there means)."""
    cols = set(table.colnames)

    def cell(col: str) -> Any:
        return table[col].data[row] if col in cols else None

    if ch.excitation_nm is None:
        ch.excitation_nm = _wavelength(cell("excitation_wavelength_in_nm"))
    if ch.emission_nm is None:
        ch.emission_nm = _wavelength(cell("emission_wavelength_in_nm"))
    if role in ("excitation", "emission") and "peak_wavelength" in cols:
        nm = _wavelength(cell("peak_wavelength"))
        if role == "excitation" and ch.excitation_nm is None:
            ch.excitation_nm = nm
        elif role == "emission" and ch.emission_nm is None:
            ch.emission_nm = nm
    if ch.indicator is None:
        ch.indicator = _label(cell("indicator")) or (_label(cell("label")) if role == "indicator" else None)
    if ch.location is None and role in ("row", "indicator") and cell("location") is not None:
        loc = cell("location")
        ch.location = loc.decode() if isinstance(loc, bytes) else str(loc)
    # references on to other tables (a fibers table) or to devices (ndx-fiber-photometry 0.1)
    for col, sub_role, attr in (("excitation_source", "excitation", "excitation_wavelength_in_nm"),
                                ("photodetector", "emission", "detected_wavelength_in_nm"),
                                ("fluorophores", "indicator", None), ("fluorophore", "indicator", None)):
        if col not in cols:
            continue
        column = table[col]
        refs = _region_rows(column, row)
        if refs is not None:  # a DynamicTableRegion into another table: follow its first row
            if refs[1].size:
                _fill(ch, refs[0], int(refs[1][0]), sub_role)
        elif attr is not None:
            device = column.data[row]
            nm = getattr(device, attr, None)
            nm = nm if nm is not None else legacy.raw_attributes(device).get(attr)
            if sub_role == "excitation" and ch.excitation_nm is None:
                ch.excitation_nm = _wavelength(nm)
            elif sub_role == "emission" and ch.emission_nm is None:
                ch.emission_nm = _wavelength(nm)


def _region_rows(column: Any, row: int) -> tuple[Any, np.ndarray] | None:
    """(target table, referenced rows) of cell ``row`` of a DynamicTableRegion column (ragged or not);
    None for any other column."""
    from hdmf.common import DynamicTableRegion, VectorIndex

    if isinstance(column, DynamicTableRegion):
        return column.table, np.atleast_1d(np.asarray(column.data[row], dtype=int))
    if isinstance(column, VectorIndex) and isinstance(column.target, DynamicTableRegion):
        start = int(column.data[row - 1]) if row else 0
        return column.target.table, np.asarray(column.target.data[start:int(column.data[row])], dtype=int)
    return None


def _label(value: Any) -> str | None:
    """An indicator's name: an ``Indicator`` device's label (from the file when the spec does not map it),
    or a plain text cell."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        return text or None
    label = getattr(value, "label", None) or legacy.raw_attributes(value).get("label") or getattr(value, "name", None)
    return str(label) if label else None


def _wavelength(value: Any) -> float | None:
    """A wavelength from the photometry table; None when absent or NaN (unknown)."""
    if value is None:
        return None
    nm = float(value)
    return nm if np.isfinite(nm) else None


def _neurodata_type(obj: Any) -> str:
    return getattr(obj, "neurodata_type", type(obj).__name__)


def _n_samples(series: Any) -> int:
    shape = getattr(series.data, "shape", None) or np.shape(series.data)
    return int(shape[0]) if len(shape) else 0


def _all_control(series: Any) -> bool:
    """True when every channel of ``series`` is a control channel by wavelength or indicator."""
    channels = photometry_channels(series)
    return bool(channels) and all(c.is_control for c in channels)


def _pick_series(all_series: dict[str, Any], name: str | None, path: Path, what: str) -> tuple[str, Any]:
    """The series named ``name`` (by name or path) or, when None, the one photometry series in the file."""
    if name is not None:
        hits = [(p, s) for p, s in all_series.items() if p == name or p.rsplit("/", 1)[-1] == name]
        if not hits:
            listing = ", ".join(all_series) or "none"
            raise InputError(f"{path}: no time series named '{name}' for the {what}; series in the file: {listing}")
        if len(hits) > 1:
            raise InputError(f"{path}: several series are named '{name}': {', '.join(p for p, _ in hits)}; "
                             "give the full path")
        return hits[0]
    fprs = [(p, s) for p, s in all_series.items() if _neurodata_type(s) in _FPRS]
    if len(fprs) == 1:
        return fprs[0]
    signals = [(p, s) for p, s in fprs if not _all_control(s)]  # separate signal/isosbestic series
    if len(signals) == 1:
        return signals[0]
    named = [(p, s) for p, s in signals if not name_has_word(p, _CONTROL_WORDS)]  # no wavelengths: by name
    if len(named) == 1:
        return named[0]
    pool = fprs or [(p, s) for p, s in all_series.items()
                    if name_has_word(p, _SIGNAL_WORDS) and not name_has_word(p, _CONTROL_WORDS)]
    if len(pool) == 1:
        return pool[0]
    if not pool:
        listing = ", ".join(all_series) or "none"
        raise InputError(f"{path}: no photometry series found (series in the file: {listing}); "
                         "name one with `series` NAME")
    raise InputError(f"{path}: several candidate photometry series ({', '.join(p for p, _ in pool)}); "
                     "name one with `series` NAME")


def _times_and_values(series: Any, path: Path, spath: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(series.get_data_in_units())
    times = np.asarray(series.get_timestamps(), dtype=np.float64)
    if len(times) != len(values):
        raise InputError(f"{path}: series '{spath}' has {len(values)} samples but {len(times)} timestamps")
    if len(times) < 2:
        raise InputError(f"{path}: series '{spath}' has fewer than 2 samples")
    step = np.diff(times)
    bad = np.flatnonzero(~(step > 0))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{path}: series '{spath}' timestamps are not increasing ({bad.size} place(s); first at "
                         f"sample {i + 1}: {times[i]:.6g} s then {times[i + 1]:.6g} s)")
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{path}: series '{spath}' holds {values.dtype} data, expected numbers")
    return times, values


def _rate_of(series: Any, times: np.ndarray) -> float | None:
    rate = getattr(series, "rate", None)
    if rate:
        return float(rate)
    step = np.diff(times)
    return float(1.0 / np.median(step))


def read_photometry(path: str | os.PathLike[str], series: str | None = None, *, control: str | None = None,
                    signal_nm: float | None = None, control_nm: float | None = None) -> Photometry:
    """Read one photometry recording (signal + control channel when present) from an NWB file.

    - ``series``: name or path of the series (``"raw_photometry"`` or ``"processing/ophys/dff"``);
      default: the only FiberPhotometryResponseSeries (series whose channels are all controls by
      wavelength/indicator do not count), else the only TimeSeries whose name looks like photometry
      (photometry, fiber, gcamp, dlight, dff, 470...).
    - ``control``: name of a separate control series (isosbestic); when omitted, the control is the
      isosbestic/control-fluorophore column of a multi-channel series, else the one separate
      FiberPhotometryResponseSeries whose channels are controls by wavelength/indicator, else a series
      named like ``isosbestic``/``control``/``405`` with the same number of samples.  A control on other timestamps
      is interpolated onto the signal's timestamps.
    - ``signal_nm`` / ``control_nm``: pick channels by excitation wavelength in multi-channel series.
    """
    path = Path(path)
    with open_nwb(path) as nwbfile:
        return photometry_from_nwbfile(nwbfile, path, series, control=control, signal_nm=signal_nm,
                                       control_nm=control_nm)


def photometry_from_nwbfile(nwbfile: Any, path: Path, series: str | None = None, *, control: str | None = None,
                            signal_nm: float | None = None, control_nm: float | None = None) -> Photometry:
    """:func:`read_photometry` on an already open ``NWBFile`` (``path`` is used in messages)."""
    all_series = find_time_series(nwbfile)
    spath, sobj = _pick_series(all_series, series, path, "photometry signal")
    times, values = _times_and_values(sobj, path, spath)
    channels = photometry_channels(sobj)
    rate = _rate_of(sobj, times)
    values2 = values if values.ndim == 2 else values[:, None]
    sig, ctl = _choose_columns(channels, signal_nm, control_nm, path, spath)
    ctl_values = None if ctl is None else values2[:, ctl.column]
    ctl_channel = ctl
    if ctl_values is None:
        cpath, cobj = None, None
        if control is not None:
            cpath, cobj = _pick_series(all_series, control, path, "photometry control")
        else:
            # a separate control series: by wavelength/indicator in its photometry table, else by name
            # with the signal's number of samples (a "control_lever" with 5 presses is not an isosbestic)
            guesses = [(p, s) for p, s in all_series.items() if p != spath and _neurodata_type(s) in _FPRS
                       and _all_control(s)] or [(p, s) for p, s in all_series.items() if p != spath
                                                and name_has_word(p, _CONTROL_WORDS) and _n_samples(s) == len(times)]
            if len(guesses) == 1:
                cpath, cobj = guesses[0]
        if cobj is not None:
            ctimes, cvals = _times_and_values(cobj, path, cpath)
            cvals = cvals if cvals.ndim == 1 else cvals[:, 0]
            if len(ctimes) == len(times) and np.allclose(ctimes, times, atol=0.5 / rate):
                ctl_values = cvals
            else:
                ctl_values = np.interp(times, ctimes, cvals)
            cch = photometry_channels(cobj)
            ctl_channel = cch[0] if cch else Channel(0)
    return Photometry(
        timestamps=times, signal=values2[:, sig.column], control=ctl_values, rate=rate,
        name=spath.rsplit("/", 1)[-1], unit=str(getattr(sobj, "unit", "")),
        signal_excitation_nm=sig.excitation_nm, signal_emission_nm=sig.emission_nm,
        control_excitation_nm=None if ctl_channel is None else ctl_channel.excitation_nm,
        control_emission_nm=None if ctl_channel is None else ctl_channel.emission_nm,
        indicator=sig.indicator or "unknown",
        control_indicator=None if ctl_channel is None else ctl_channel.indicator,
        location=sig.location or "", description=str(getattr(sobj, "description", "")), source_path=spath)


def _closest(channels: list[Channel], nm: float) -> Channel | None:
    with_nm = [c for c in channels if c.excitation_nm is not None]
    if not with_nm:
        return None
    best = min(with_nm, key=lambda c: abs(c.excitation_nm - nm))
    return best if abs(best.excitation_nm - nm) <= 10 else None


def _choose_columns(channels: list[Channel], signal_nm: float | None, control_nm: float | None,
                    path: Path, spath: str) -> tuple[Channel, Channel | None]:
    """Signal and control columns by wavelength/indicator; a plain 2-column series is (signal, control)."""
    if signal_nm is not None:
        sig = _closest(channels, signal_nm)
        if sig is None:
            have = [c.excitation_nm for c in channels]
            raise InputError(f"{path}: series '{spath}' has no channel excited at {signal_nm:g} nm "
                             f"(channels: {have})")
    else:
        signals = [c for c in channels if not c.is_control]
        sig = signals[0] if signals else channels[0]
    if control_nm is not None:
        ctl = _closest(channels, control_nm)
        if ctl is None:
            raise InputError(f"{path}: series '{spath}' has no channel excited at {control_nm:g} nm")
    else:
        controls = [c for c in channels if c.is_control and c.column != sig.column]
        if controls:
            ctl = controls[0]
        elif len(channels) == 2 and all(c.excitation_nm is None for c in channels):
            ctl = channels[1 - sig.column]
        else:
            ctl = None
    return sig, ctl
