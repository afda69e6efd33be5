"""Provenance in the journal and the NWB file: config and rig file hashes, firmware and schema, and every
parameter change (limits sent to the device, trials a closed-loop policy changed)."""
import hashlib
import json

from _nwb_support import inspector_problems
from _session_support import fast_config

from dopa_rl.cli import main
from dopa_rl.io.nwb_read import open_nwb
from dopa_rl.protocol import messages as P
from dopa_rl.session.journal import read_journal


def _tables(path):
    with open_nwb(path) as f:
        mod = f.processing["session"]
        return mod["provenance"].to_dataframe(), mod["parameter_changes"].to_dataframe(), f.notes


def test_provenance_and_policy_changes_are_journaled_and_in_the_nwb(tmp_path):
    cfg = fast_config(tmp_path, 25, extra='[policy]\nkind = "rpe-target"\ntarget_rpe = 0.2\nmin_ul = 0.5\n')
    rig = tmp_path / "rig.toml"
    rig.write_text('[rig]\nname = "rig-7"\n[valve]\nms_per_ul = 9.5\ncalibrated = "today"\n')
    out = tmp_path / "s.nwb"
    assert main(["run", str(cfg), "--device", "sim", "--speed", "10", "--rig-file", str(rig), "--out", str(out)]) == 0
    prov, changes, notes = _tables(out)
    p = dict(zip(prov["key"], prov["value"]))
    assert p["config_sha256"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert p["rig_sha256"] == hashlib.sha256(rig.read_bytes()).hexdigest()
    assert int(p["schema_hash"]) == P.SCHEMA_HASH and int(p["firmware_version"]) == P.FIRMWARE_VERSION
    assert p["rig_name"] == "rig-7" and float(p["ms_per_ul"]) == 9.5
    assert p["config_sha256"] in notes
    # the limits sent to the device
    lim = changes[changes["source"] == "configure"]
    assert dict(zip(lim["parameter"], lim["value"].map(json.loads)))["max_valve_ms"] == 200
    # every trial whose reward the policy changed, with the schedule's value it replaced, equals the journal's plans
    pol = changes[(changes["source"] == "policy rpe-target") & (changes["parameter"] == "reward_ul")]
    assert len(pol) > 0
    recs = read_journal(str(out) + ".journal")
    planned = {r["trial"]: r["plan"]["reward_ul"] for r in recs if r["kind"] == "plan"}
    for _, row in pol.iterrows():
        assert json.loads(row["value"]) == planned[row["trial"]] != json.loads(row["previous"])
    assert changes["time"].dropna().is_monotonic_increasing
    assert inspector_problems(out) == []


def test_open_loop_session_has_no_policy_changes(tmp_path):
    out = tmp_path / "s.nwb"
    assert main(["run", str(fast_config(tmp_path, 10)), "--device", "sim", "--speed", "10", "--out", str(out)]) == 0
    _, changes, _ = _tables(out)
    assert set(changes["source"]) == {"configure"}
