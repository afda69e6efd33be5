"""Convert the 40 optotagged VTA dopamine neurons of the variable-magnitude task (Eshel et al. 2015;
Dabney et al. 2020) from the Uchida lab's "CommonFormat" .mat files into NWB files that
``dopa-rl distributional`` reads: one file per cell, with its spikes and a trials table.

Where the cells come from (they are not part of dopa_rl): the public GitHub repository
dongjae-kim/efficient-coding-dist-rl (commit 70e198096d6e0709e082ebccd05682a289ec5072), folder
``measured_neurons/dabney_matlab/variable-reward/Light-ID dopamine/`` (40 files, 2.7 MB), published
there beside Dabney et al.'s own analysis code (``GEN_dabneys_fit.m``, ``LoadVarMagData.m``, ...).
That repository has no licence file; cite Eshel et al. (2015, Nature Neurosci 18:1146) and Dabney et
al. (2020, Nature 577:671) when you use the cells.

What the conversion does, as Dabney et al.'s ``LoadVarMagData.m`` reads the files: times are in ms;
``events.trialType`` 1-7 are uncued rewards of 0.1, 0.3, 1.2, 2.5, 5, 10, 20 uL delivered at
``events.odorOn`` (the trial's event time), 8-14 the same magnitudes after an odour cue at ``odorOn``
with the reward 1.5 s after odour onset (their response windows: 200-600 ms after ``odorOn`` on uncued
trials, 1700-2100 ms on cued ones).  Trials of other types (15 and up, or unlabelled) are left out, as
theirs are.  The trials table gets ``start_time`` (the first event), ``cue_time`` (odour onset; NaN when
uncued), ``outcome_time`` (the reward), ``reward`` (uL) and ``cued`` (1/0).  The session date is not in
the files; the NWB files carry a placeholder start time and say so in their description.

    python examples/dabney2020_to_nwb.py "SOURCE/Light-ID dopamine" OUT_DIR
    dopa-rl distributional OUT_DIR/*.nwb --json dabney2020.json --plots figs/
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

#: reward magnitudes (uL) of trial types 1-7 (uncued) and 8-14 (cued)
MAGNITUDES = (0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0)
#: odour onset to reward on cued trials (s)
CUE_TO_REWARD_S = 1.5


def read_cell(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """One CommonFormat file: the trials table and the spike times (s)."""
    from scipy.io import loadmat

    s = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    ev, resp = s["events"], s["responses"]
    odor = np.atleast_1d(ev.odorOn).astype(float) / 1000.0
    tt = np.atleast_1d(ev.trialType).astype(float)
    ok = np.isfinite(tt) & (tt >= 1) & (tt <= 14) & np.isfinite(odor)
    odor, tt = odor[ok], tt[ok].astype(int)
    cued = tt >= 8
    reward = np.asarray(MAGNITUDES)[(tt - 1) % 7]
    outcome = np.where(cued, odor + CUE_TO_REWARD_S, odor)
    trials = pd.DataFrame({"start_time": odor, "stop_time": outcome + 1.0, "cue_time": np.where(cued, odor, np.nan),
                           "outcome_time": outcome, "reward": reward, "cued": cued.astype(float),
                           "trial_type": tt.astype(float)})
    spikes = np.sort(np.atleast_1d(resp.spike).astype(float)) / 1000.0
    return trials.sort_values("start_time", kind="stable").reset_index(drop=True), spikes


def convert(source: Path, out: Path) -> list[Path]:
    """Write one NWB file per .mat cell file in ``source`` into ``out``; returns the paths."""
    from dopa_rl.io.nwb_types import SessionData, SessionMetadata
    from dopa_rl.io.nwb_write import write_session

    files = sorted(Path(source).glob("*.mat"))
    if not files:
        raise SystemExit(f"{source}: no .mat files")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in files:
        trials, spikes = read_cell(f)
        animal = f.stem.split("_")[0]
        md = SessionMetadata(
            subject_id=animal, session_id=f.stem,
            session_start_time=dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc),
            identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"dabney2020/{f.name}")),
            session_description=(f"optotagged VTA dopamine neuron {f.stem}, variable-magnitude task (Eshel et al. "
                                 "2015; Dabney et al. 2020); converted by dopa_rl examples/dabney2020_to_nwb.py; "
                                 "the recording date is not in the source, the start time is a placeholder"),
            experiment_description="Variable reward magnitudes (0.1-20 uL), cued (odour, reward 1.5 s later) and uncued.",
            institution="Harvard University (Uchida lab)", lab="Uchida",
            keywords=("dopamine", "VTA", "distributional reinforcement learning", "optotagging"))
        data = SessionData(metadata=md, trials=trials, units={0: spikes}, spike_resolution=1e-4)
        paths.append(write_session(out / f"{f.stem}.nwb", data, overwrite=True))
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="the 'Light-ID dopamine' folder of .mat files")
    p.add_argument("out", type=Path, help="folder for the NWB files")
    a = p.parse_args(argv)
    paths = convert(a.source, a.out)
    print(f"wrote {len(paths)} NWB files to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
