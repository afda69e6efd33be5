"""Issue 18: a lab file listing the rigs (``dopa-rl run lab.toml --out-dir runs/``) with per-rig device, port,
rig file, subject and output folder; and one rig whose output disk fills up while the others run on."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from _nwb_support import inspector_problems
from _session_support import fast_config, nwb_contents
from test_session_lab import SPEED, child_env, configs   # the lab tests' configs, speed and children

from dopa_rl.session.runner import MAX_SPEED, sim_retransmit_ms, sim_ring

# a rig given by its port: a simulated one at --speed max, as `--device sim` would open it
URL = (f"dopasim://?speed={MAX_SPEED:g}&seed=5&animal=rw&ring={sim_ring(MAX_SPEED)}"
       f"&retx_ms={sim_retransmit_ms(MAX_SPEED)}")

from dopa_rl.cli import main
from dopa_rl.session import ConfigError
from dopa_rl.session.lab import LabRig, disk_full, is_lab_file, read_lab_file

@pytest.fixture
def children(monkeypatch):
    """The rigs' processes import this checkout."""
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- the file
def test_read_lab_file_resolves_paths_from_its_folder_and_keeps_each_override(tmp_path):
    lab = tmp_path / "lab" / "lab.toml"
    lab.parent.mkdir()
    lab.write_text('[[rigs]]\nconfig = "a.toml"\n\n'
                   '[[rigs]]\nconfig = "../b.toml"\nport = "/dev/ttyACM1"\nrig_file = "rigs/two.toml"\n'
                   'subject = "m12"\nout_dir = "/mnt/usb"\n\n'
                   '[[rigs]]\nconfig = "c.toml"\ndevice = "rig"\n')
    assert is_lab_file(lab)
    d = lab.parent.resolve()
    assert read_lab_file(lab) == [
        LabRig(config=d / "a.toml"),
        LabRig(config=d / "../b.toml", device="/dev/ttyACM1", rig_file=d / "rigs/two.toml", subject="m12",
               out_dir=Path("/mnt/usb")),
        LabRig(config=d / "c.toml", device="rig")]
    # a session config is not a lab file
    assert not is_lab_file(fast_config(tmp_path, 5))
    assert not is_lab_file(tmp_path / "missing.toml")


@pytest.mark.parametrize("text, message", [
    ('[[rigs]]\nconfig = "a.toml"\ndevices = "sim"\n', "rigs[0].devices: unknown key; a rig takes config, device"),
    ('[[rigs]]\ndevice = "sim"\n', "rigs[0].config: missing"),
    ('[[rigs]]\nconfig = "a.toml"\ndevice = "sim"\nport = "/dev/ttyACM0"\n', "rigs[0].device and port: give one"),
    ('[[rigs]]\nconfig = "a.toml"\nsubject = "m 1/x"\n', "rigs[0].subject = 'm 1/x': letters, digits"),
    ('[[rigs]]\nconfig = 3\n', "rigs[0].config = 3: give a non-empty string"),
    ('[lab]\nname = "x"\nrigs = []\n', "lab: unknown key"),
    ('rigs = 1\n', "rigs: give one [[rigs]] table per rig"),
    ('[[rigs]\n', "not a TOML lab file"),
])
def test_read_lab_file_refuses_bad_files_naming_the_entry(tmp_path, text, message):
    lab = tmp_path / "lab.toml"
    lab.write_text(text)
    with pytest.raises(ConfigError) as e:
        read_lab_file(lab)
    assert any(message in p for p in e.value.problems), e.value.problems
    assert all(p.startswith(f"{lab}: ") for p in e.value.problems)


def test_bad_lab_file_from_the_command_line_exit_2_nothing_started(tmp_path, capsys):
    a, = configs(tmp_path, (5,), ("a",))
    runs = tmp_path / "runs"
    runs.mkdir()
    lab = tmp_path / "lab.toml"
    lab.write_text(f'[[rigs]]\nconfig = "{a.name}"\ndevice = "sim"\nport = "x"\n\n[[rigs]]\nconfig = "missing.toml"\n')
    code, _, err = run_cli(capsys, "run", lab, "--out-dir", runs)
    assert code == 2
    lines = err.strip().splitlines()
    assert any("rigs[0].device and port: give one" in ln for ln in lines), lines
    assert list(runs.iterdir()) == []
    # a lab file whose rig has no device and no --device
    lab.write_text(f'[[rigs]]\nconfig = "{a.name}"\n')
    code, _, err = run_cli(capsys, "run", lab, "--out-dir", runs)
    assert code == 2 and f"{a}: no device: give --device" in err, err
    assert list(runs.iterdir()) == []
    # and one config without --device
    code, _, err = run_cli(capsys, "run", a, "--out", tmp_path / "x.nwb")
    assert code == 2 and err.strip() == "error: --device: give sim, rig, a port or a URL", err


# ----------------------------------------------------------------------------- running one
def test_lab_file_runs_each_rig_with_its_overrides(tmp_path, capsys, children):
    a, = configs(tmp_path, (12,), ("a",))
    runs = tmp_path / "runs"
    runs.mkdir()
    lab = tmp_path / "lab.toml"
    # the same config twice: the second rig is another animal (subject) on a device named by its port URL
    lab.write_text(f'[[rigs]]\nconfig = "{a.name}"\ndevice = "sim"\n\n'
                   f'[[rigs]]\nconfig = "{a.name}"\nport = "{URL}"\n'
                   f'subject = "m9"\n')
    code, out, err = run_cli(capsys, "run", lab, "--out-dir", runs, "--speed", SPEED, "--json", tmp_path / "lab.json")
    assert code == 0, out + err
    rows = {r["name"]: r for r in json.loads((tmp_path / "lab.json").read_text())["rigs"]}
    assert set(rows) == {"ma_t1", "m9_t1"}
    for name, subject in (("ma_t1", "ma"), ("m9_t1", "m9")):
        r = rows[name]
        assert r["state"] == "complete" and r["trials"] == 12 and r["problems"] == [], r
        assert r["rewards"] == r["valve_openings"]
        path = runs / f"{name}.nwb"
        assert inspector_problems(path) == []
        from pynwb import NWBHDF5IO

        with NWBHDF5IO(str(path), "r") as io:
            assert io.read().subject.subject_id == subject
        trials, _ = nwb_contents(path)
        assert len(trials) == 12
    assert URL in (runs / "m9_t1.log").read_text()


# ----------------------------------------------------------------------------- a full disk
def _tiny_filesystem(folder: Path, size: str) -> None:
    """A tmpfs of ``size`` mounted at ``folder`` (root only); skips where this machine cannot mount one."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs (the full-disk case is run where it can be)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_disk_full_reports_a_full_file_system_only(tmp_path):
    small = tmp_path / "small"
    _tiny_filesystem(small, "64k")
    try:
        assert disk_full(tmp_path) is None
        assert disk_full(small) is None                      # empty: room for the probe
        (small / "fill").write_bytes(b"\0" * 60_000)          # leaves less than the probe's 64 KiB
        why = disk_full(small)
        assert why is not None and why.startswith(f"{small}: No space left on device"), why
        assert list(small.iterdir()) == [small / "fill"]      # the probe is gone
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)


def test_one_rig_on_a_full_disk_ends_alone_says_why_and_recovers(tmp_path, capsys, children):
    a, b, c = configs(tmp_path, (300, 40, 40), ("a", "b", "c"))
    runs, small = tmp_path / "runs", tmp_path / "small"
    runs.mkdir()
    _tiny_filesystem(small, "64k")     # a few trials of journal and raw log, then ENOSPC
    try:
        lab = tmp_path / "lab.toml"
        lab.write_text(f'[[rigs]]\nconfig = "{a.name}"\nout_dir = "small"\n\n[[rigs]]\nconfig = "{b.name}"\n\n'
                       f'[[rigs]]\nconfig = "{c.name}"\n')
        code, out, err = run_cli(capsys, "run", lab, "--device", "sim", "--out-dir", runs, "--speed", SPEED,
                                 "--json", tmp_path / "lab.json")
        assert code == 1, out + err
        rows = {r["name"]: r for r in json.loads((tmp_path / "lab.json").read_text())["rigs"]}
        full = rows["ma_t1"]
        assert full["state"].startswith("died (exited with code"), full
        assert full["problems"][0].startswith(f"output disk full: {small}: No space left on device"), full
        assert f"dopa-rl recover {small / 'ma_t1.nwb.journal'} --out FILE.nwb on a disk with space" in full["problems"][0]
        assert "output disk full" in out                     # the printed summary says it too
        # the others ran to the end, their links never late: no re-arm, retry, reconnect or lost event
        for name in ("mb_t1", "mc_t1"):
            r = rows[name]
            assert r["state"] == "complete" and r["trials"] == 40 and r["problems"] == [], r
            assert r["rewards"] == r["valve_openings"] > 0
            stats = json.loads((runs / f"{name}.json").read_text())["client_stats"]
            assert {k: stats[k] for k in ("rearms", "retries", "disconnects", "events_dropped", "device_resets")} == \
                dict.fromkeys(("rearms", "retries", "disconnects", "events_dropped", "device_resets"), 0)
            assert inspector_problems(runs / f"{name}.nwb") == []
        # the journal on the full disk recovers onto another disk: the trials it holds
        code, _, err = run_cli(capsys, "recover", small / "ma_t1.nwb.journal", "--out", tmp_path / "a-rec.nwb")
        assert code == 0, err
        trials, _ = nwb_contents(tmp_path / "a-rec.nwb")
        assert 1 <= len(trials) < 300 and list(trials["trial"]) == list(range(len(trials)))
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)


def test_a_full_disk_is_one_line_from_the_command_not_an_internal_error(tmp_path, capsys):
    a, = configs(tmp_path, (300,), ("a",))
    small = tmp_path / "small"
    _tiny_filesystem(small, "64k")
    try:
        code, _, err = run_cli(capsys, "run", a, "--device", "sim", "--speed", "max", "--out", small / "a.nwb")
        assert code == 1
        line = err.strip().splitlines()[-1]
        assert line.startswith("error: output disk full (") and "No space left on device" in line, err
        assert "dopa-rl recover FILE.nwb.journal --out NEW.nwb" in line and "internal error" not in err
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)
