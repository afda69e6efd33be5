"""Open an NWB session and get what dopa_rl needs from it.  Usage: python read_nwb.py SESSION.nwb

Each part is read on its own: a file without trials, photometry or units says so and the rest is still shown.
"""
import sys

from dopa_rl.errors import InputError
from dopa_rl.io import nwb

if len(sys.argv) != 2:
    print("usage: python read_nwb.py SESSION.nwb   (make one: dopa-rl simulate --task pavlovian --out session.nwb)",
          file=sys.stderr)
    sys.exit(2)
path = sys.argv[1]
try:
    print(nwb.format_inspection(nwb.inspect_nwb(path)))   # what the file holds, what is missing
except InputError as exc:  # not an NWB file, or not readable: one line, exit 2
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)

try:
    trials = nwb.read_behavior(path)                   # add columns={"cue": "stimulus"} / trials_table="..."
    print(trials.head())
except InputError as exc:
    print(f"trials: not usable as they are ({exc})")

try:
    phot = nwb.read_photometry(path)                   # signal + isosbestic/control, in volts
    print(f"photometry {phot.name}: {len(phot.signal)} samples at {phot.rate:g} Hz, control: {phot.control is not None}")
except InputError as exc:
    print(f"photometry: none read ({exc})")

try:
    spikes = nwb.read_units(path)                      # unit id -> spike times in seconds
    for unit, times in spikes.items():
        print(f"unit {unit}: {len(times)} spikes")
except InputError as exc:
    print(f"units: none read ({exc})")
