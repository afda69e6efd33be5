"""Session config and rig file validation: every problem at once, one line each naming the key; exit 2,
nothing sent to the device."""
from __future__ import annotations

import pytest
from _session_support import fast_config

from dopa_rl.cli import main
from dopa_rl.session.config import ConfigError, load_config, parse_config, parse_rig, rig_toml
from dopa_rl.testing import SimulatedDUT

BAD = """
[session]
subject = "m1"
colour = "blue"
rig_file = "no_such_rig.toml"

[[trial_types]]
name = "A"
reward_probability = 1.5
cue_s = -1.0
reward_ul = 50.0

[safety]
max_valve_ms = 200

[policy]
kind = "user"
function = "no_such_module_xyz:choose"
"""


def test_every_problem_reported_once_naming_its_key(tmp_path):
    (tmp_path / "bad.toml").write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "bad.toml")
    lines = info.value.problems
    expect = ["session.colour: unknown key", "trial_types[0].reward_probability = 1.5: must be in [0, 1]",
              "trial_types[0].cue_s = -1.0: must be in [0, 60]", "session.rig_file = 'no_such_rig.toml'",
              "policy.function = 'no_such_module_xyz:choose'"]
    for e in expect:
        assert sum(e in line for line in lines) == 1, (e, lines)
    # reward_ul 50 x 10 ms/uL = 500 ms > max_valve_ms 200 is only checked with a known rig: give one
    with pytest.raises(ConfigError) as info:
        parse_config(BAD.replace('rig_file = "no_such_rig.toml"\n', ""), source="x")
    assert any("trial_types[0].reward_ul = 50.0: valve time 500 ms" in p and "max_valve_ms = 200" in p
               for p in info.value.problems)


@pytest.mark.parametrize("snippet,key", [
    ('[session]\nsubject = "m"\nspeed = 3\n[[trial_types]]\nname = "A"\n', "session.speed: unknown key"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\nreward_probability = 1.01\n',
     "trial_types[0].reward_probability"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\ntrace_s = -0.5\n', "trial_types[0].trace_s"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\n[iti]\nmin_s = -1\n', "iti.min_s"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\nreward_ul = 30\n', "trial_types[0].reward_ul"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\n[safety]\nmax_valve_ms = 6000\n', "safety.max_valve_ms"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\n[policy]\nkind = "user"\nfunction = "nope.py:f"\n',
     "policy.function"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\n[policy]\nkind = "magic"\n', "policy.kind"),
    ('[session]\nsubject = "m"\nrig_file = "missing.toml"\n[[trial_types]]\nname = "A"\n', "session.rig_file"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\n[[blocks]]\ntrials = 5\nreward_probability = {B = 0.5}\n',
     "blocks[0].reward_probability.B"),
    # types: integers are integers, flags are booleans, texts are strings (these were accepted, or coerced)
    ('[session]\nsubject = "m"\nseed = 1.5\n[[trial_types]]\nname = "A"\n', "session.seed = 1.5: must be an integer"),
    ('[session]\nsubject = "m"\nseed = -1\n[[trial_types]]\nname = "A"\n', "session.seed = -1: must be >= 0"),
    ('[session]\nsubject = "m"\nseed = "7"\n[[trial_types]]\nname = "A"\n', "session.seed = '7': must be an integer"),
    ('[session]\nsubject = "m"\nlick_debounce_us = 1.5\n[[trial_types]]\nname = "A"\n',
     "session.lick_debounce_us = 1.5: must be an integer"),
    ('[session]\nsubject = "m"\nlick_debounce_us = 90000\n[[trial_types]]\nname = "A"\n',
     "session.lick_debounce_us = 90000: must be in [0, 50000]"),
    ('[session]\nsubject = "m"\nrepeat_blocks = "no"\n[[trial_types]]\nname = "A"\n',
     "session.repeat_blocks = 'no': must be true or false"),
    ('[session]\nsubject = "m"\nexperimenter = "Doe, J"\n[[trial_types]]\nname = "A"\n',
     "session.experimenter = 'Doe, J': must be a list of strings"),
    ('[session]\nsubject = "m"\nsession_id = 3\n[[trial_types]]\nname = "A"\n', "session.session_id = 3: must be a string"),
    ('[session]\nsubject = "m"\n[[trial_types]]\nname = "A"\ntone_hz = 4000.5\n', "trial_types[0].tone_hz = 4000.5"),
])
def test_cli_bad_config_exit_2_one_line_nothing_sent(tmp_path, capsys, snippet, key):
    cfg = tmp_path / "c.toml"
    cfg.write_text(snippet)
    with SimulatedDUT(realtime=False) as dut:
        code = main(["run", str(cfg), "--device", dut.url, "--out", str(tmp_path / "o.nwb")])
        assert code == 2
        assert dut.device.stats["rx_frames"] == 0 and dut.device.decoder.error_count == 0   # nothing sent
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0] and err[0].startswith(f"error: {cfg}: "), err
    assert not (tmp_path / "o.nwb").exists() and not (tmp_path / "o.nwb.journal").exists()


def test_cli_reports_all_problems_one_line_each(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text(BAD)
    assert main(["run", str(tmp_path / "bad.toml"), "--device", "sim", "--out", str(tmp_path / "o.nwb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("error: ") for line in err)   # the 5 above + valve time


def test_good_config_and_rig_file(tmp_path):
    rig = parse_rig('[rig]\nname = "r1"\nserial_number = "9573"\n[valve]\nms_per_ul = 12.5\n')
    assert rig.ms_per_ul == 12.5 and rig.serial_number == "9573"
    assert parse_rig(rig_toml(rig)).ms_per_ul == 12.5
    (tmp_path / "rig.toml").write_text(rig_toml(rig))
    cfg_path = fast_config(tmp_path, 7)
    cfg_path.write_text(cfg_path.read_text().replace('seed = 1', 'seed = 1\nrig_file = "rig.toml"'))
    cfg, r = load_config(cfg_path)
    assert cfg.n_trials == 7 and r.ms_per_ul == 12.5 and [t.name for t in cfg.trial_types] == ["CS+", "CS-"]
    with pytest.raises(ConfigError, match=r"valve.ms_per_ul: missing"):
        parse_rig('[rig]\nport = "/dev/ttyACM0"\n')


def test_calibrate_writes_rig_file(tmp_path, capsys):
    out = tmp_path / "rig.toml"
    assert main(["calibrate", "--device", "sim", "--speed", "50", "--pulses", "10", "--ms", "30",
                 "--measured-ul", "25", "--rig-file", str(out)]) == 0
    rig = parse_rig(out.read_text())
    assert rig.ms_per_ul == pytest.approx(300 / 25)
