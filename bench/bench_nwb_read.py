"""Read a 1-hour NWB session and build the analysis arrays; compare with a raw h5py read of the same data.

Session: 500 Pavlovian trials, 1 kHz two-channel photometry (signal + isosbestic) for 3600 s, 20 units,
written once by our writer into a temporary folder.  Timed (best of --repeat runs):

- ours: behavior + events + photometry + units (spikeinterface) through one ``NWBSession``, then
  aligned arrays: a peri-cue photometry matrix (-1..+3 s, trials x samples) and per-unit spike counts in
  100 ms bins around each cue (units x trials x bins);
- reference: the same numbers read straight from the HDF5 datasets with h5py, and the same alignment.

The same through the one-call functions (each opens the file) is timed too.
A cProfile run splits our time into dopa_rl code, pynwb/hdmf, h5py, spikeinterface and the rest.

Run: .venv/bin/python bench/bench_nwb_read.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np


def make_session(path: Path) -> None:
    from dopa_rl.io.nwb import write_session
    from dopa_rl.io.synthetic import DopamineObservation, simulate_session

    obs = DopamineObservation(photometry_rate=1000.0, n_units=20)
    session = simulate_session("pavlovian", "rw", seed=0, n_trials=500, observation=obs, duration_s=3600.0)
    write_session(path, session)


def align(times: np.ndarray, values: np.ndarray, events: np.ndarray, rate: float, pre: float, post: float) -> np.ndarray:
    """Peri-event matrix [events, samples]: samples from ``pre`` s before to ``post`` s after each event."""
    i0 = np.searchsorted(times, events - pre)
    n = int(round((pre + post) * rate))
    idx = np.clip(i0[:, None] + np.arange(n)[None, :], 0, len(values) - 1)
    return values[idx]


def spike_counts(trains: list[np.ndarray], events: np.ndarray, pre: float, post: float, bin_s: float) -> np.ndarray:
    """Spike counts [units, events, bins] in bins of ``bin_s`` around each event."""
    edges = np.arange(-pre, post + 1e-9, bin_s)
    grid = events[:, None] + edges[None, :]
    out = np.empty((len(trains), len(events), len(edges) - 1), dtype=np.int64)
    for u, t in enumerate(trains):
        out[u] = np.diff(np.searchsorted(t, grid), axis=1)
    return out


def ours(path: Path) -> tuple:
    from dopa_rl.io import nwb

    with nwb.NWBSession(path) as s:  # one open for all reads
        trials, events, phot, spikes = s.behavior(), s.events(), s.photometry(), s.units()
    return _aligned(trials, events, phot, spikes)


def ours_separate(path: Path) -> tuple:
    """The same with the one-call-per-item functions, each opening the file."""
    from dopa_rl.io import nwb

    return _aligned(nwb.read_behavior(path), nwb.read_events(path), nwb.read_photometry(path), nwb.read_units(path))


def _aligned(trials, events, phot, spikes) -> tuple:
    cues = trials["cue_time"].to_numpy()
    m = align(phot.timestamps, phot.signal, cues, phot.rate, 1.0, 3.0)
    c = spike_counts([spikes[u] for u in spikes.unit_ids], cues, 1.0, 3.0, 0.1)
    return trials, events, m, c


def reference(path: Path) -> tuple:
    import h5py

    with h5py.File(path, "r") as f:
        tr = f["intervals/trials"]
        cols = {k: tr[k][:] for k in ("start_time", "stop_time", "cue_time", "outcome_time", "reward", "licks")}
        lick = f["events/lick/timestamp"][:]
        ds = f["acquisition/photometry/data"]
        data = ds[:] * ds.attrs.get("conversion", 1.0)
        rate = float(f["acquisition/photometry/starting_time"].attrs["rate"])
        t = f["acquisition/photometry/starting_time"][()] + np.arange(len(data)) / rate
        flat, ends = f["units/spike_times"][:], f["units/spike_times_index"][:]
    trains = np.split(flat, ends[:-1])
    m = align(t, data[:, 0], cols["cue_time"], rate, 1.0, 3.0)
    c = spike_counts(trains, cols["cue_time"], 1.0, 3.0, 0.1)
    return cols, lick, m, c


def _category(filename: str) -> str:
    for key, name in (("dopa_rl", "dopa_rl (ours)"), ("bench_nwb_read", "dopa_rl (ours)"), ("/pynwb/", "pynwb"),
                      ("/hdmf/", "hdmf"), ("/h5py/", "h5py"), ("spikeinterface", "spikeinterface"),
                      ("/pandas/", "pandas"), ("/numpy/", "numpy"), ("/scipy/", "scipy")):
        if key in filename:
            return name
    if filename.startswith("<") or filename == "~":
        return "builtins (incl. HDF5 C calls)"
    return "other python"


def profile_shares(path: Path) -> dict[str, float]:
    prof = cProfile.Profile()
    prof.enable()
    ours(path)
    prof.disable()
    stats = pstats.Stats(prof)
    shares: dict[str, float] = {}
    for (filename, _line, _fn), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        cat = _category(filename)
        shares[cat] = shares.get(cat, 0.0) + tottime
    total = sum(shares.values())
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def best_of(fn, path: Path, repeat: int) -> tuple[float, tuple]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(path)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "hour.nwb"
        t0 = time.perf_counter()
        make_session(path)
        t_write = time.perf_counter() - t0
        print(f"wrote {path.stat().st_size / 1e6:.1f} MB session in {t_write:.2f} s (simulate + write)")
        ours(path)  # warm imports (pynwb, ndx extensions, spikeinterface) so they are not timed
        t_ours, (trials, _ev, m, c) = best_of(ours, path, args.repeat)
        t_sep, _ = best_of(ours_separate, path, args.repeat)
        t_ref, (_cols, _lick, m_ref, c_ref) = best_of(reference, path, args.repeat)
        assert np.array_equal(m, m_ref[:, : m.shape[1]]) and np.array_equal(c, c_ref), "ours and reference disagree"
        print(f"trials {len(trials)}, peri-cue photometry {m.shape}, spike counts {c.shape}")
        print(f"ours (NWBSession, one open + alignment):    {t_ours:.3f} s")
        print(f"ours (read_* functions, one open each):    {t_sep:.3f} s")
        print(f"reference (raw h5py + same alignment):     {t_ref:.3f} s")
        print(f"ratio ours / raw h5py: {t_ours / t_ref:.1f}x")
        print("where our time goes (cProfile tottime shares):")
        for cat, share in profile_shares(path).items():
            print(f"  {cat:<32} {100 * share:5.1f} %")


if __name__ == "__main__":
    main()
