"""Open an NWB session and get what dopa_rl needs from it.  Usage: python read_nwb.py SESSION.nwb"""
import sys

from dopa_rl.io import nwb

if len(sys.argv) != 2:
    print("usage: python read_nwb.py SESSION.nwb   (make one: dopa-rl simulate --task pavlovian --out session.nwb)",
          file=sys.stderr)
    sys.exit(2)
path = sys.argv[1]
print(nwb.format_inspection(nwb.inspect_nwb(path)))   # what the file holds, what is missing

trials = nwb.read_behavior(path)                       # add columns={"cue": "stimulus"} / trials_table="..."
print(trials.head())

phot = nwb.read_photometry(path)                       # signal + isosbestic/control, in volts
print(f"photometry {phot.name}: {len(phot.signal)} samples at {phot.rate:g} Hz, control: {phot.control is not None}")

spikes = nwb.read_units(path)                          # unit id -> spike times in seconds
for unit, times in spikes.items():
    print(f"unit {unit}: {len(times)} spikes")
