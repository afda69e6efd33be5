"""Issue 15 item 5, outputs: links are written through, devices and FIFOs are streamed into or refused (never
replaced), and an output folder that takes no files is found before any computing (one line, exit 2)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import dopa_rl
from dopa_rl.cli import main
from dopa_rl.errors import InputError
from dopa_rl.io.atomic import atomic_path, atomic_write_text

SRC = str(Path(dopa_rl.__file__).resolve().parents[1])


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def choices(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "choices.csv"
    assert main(["simulate", "--task", "bandit", "--model", "rw-softmax", "--subjects", "2", "--trials", "60",
                 "--out", str(path)]) == 0
    return path


def test_a_symlink_is_written_through(tmp_path):
    target = tmp_path / "real" / "fit.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "fit.json"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    with atomic_path(link) as tmp:
        tmp.write_text("via path")
    assert link.is_symlink() and target.read_text() == "via path"


def test_a_fifo_is_streamed_into_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # a reader is there, so the writer never blocks
    try:
        atomic_write_text(fifo, '{"a": 1}\n')
        got = os.read(reader, 1000)
    finally:
        os.close(reader)
    assert got == b'{"a": 1}\n'
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(InputError, match="is a FIFO"):
        with atomic_path(fifo):
            pass
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_full_device_is_an_input_error_and_stays_a_device(tmp_path):
    """A copy of /dev/full (character device 1:7) made here, so the real one is never at risk."""
    full = tmp_path / "full"
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs root (CI runs as root)")
    with pytest.raises(InputError, match="cannot write there"):
        atomic_write_text(full, "x" * 10000)
    assert stat.S_ISCHR(os.stat(full).st_mode)
    with pytest.raises(InputError, match="is a character device"):
        with atomic_path(full):
            pass
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_json_to_dev_stdout_streams(choices, tmp_path):
    """``--json /dev/stdout``, through a link of our own to the same place (/proc/self/fd/1), so a broken
    writer can only ever replace the link in tmp_path, never the machine's /dev/stdout."""
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    proc = subprocess.run([sys.executable, "-m", "dopa_rl.cli", "fit", str(choices), "--model", "rw-softmax",
                           "--restarts", "1", "--json", str(stdout)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    start = proc.stdout.index("{")
    decoded, end = json.JSONDecoder().raw_decode(proc.stdout[start:])
    assert decoded["model"] == "rw-softmax" and len(decoded["subjects"]) == 2
    assert "Model: rw-softmax" in proc.stdout[start + end:]
    assert stdout.is_symlink()


def test_a_fifo_is_refused_for_nwb_outputs_before_anything_runs(capsys, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "simulate", "--task", "pavlovian", "--model", "rw", "--out", fifo)
    assert code == 2 and "is a FIFO (named pipe); give a folder" in err and err.count("\n") == 1, err
    nwb = tmp_path / "pipe.nwb"
    os.mkfifo(nwb)
    code, _, err = run_cli(capsys, "simulate", "--task", "pavlovian", "--model", "rw", "--out", nwb)
    assert code == 2 and "is a FIFO (named pipe); give a regular file name" in err, err
    assert stat.S_ISFIFO(os.stat(nwb).st_mode)


def _unwritable_folder(tmp_path) -> Path:
    """A folder that takes no new files: /sys as root (permission bits do not stop root), else a 0o555 one."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if any command gets to its computation."""
    def refuse(*a, **k):
        raise AssertionError("computed before checking the output folder")

    import dopa_rl.commands.demo
    import dopa_rl.fit
    import dopa_rl.fit.compare
    import dopa_rl.io.synthetic
    import dopa_rl.session.runner

    monkeypatch.setattr(dopa_rl.fit, "fit", refuse)
    monkeypatch.setattr(dopa_rl.fit.compare, "compare_models", refuse)
    monkeypatch.setattr(dopa_rl.io.synthetic, "simulate_sessions", refuse)
    monkeypatch.setattr(dopa_rl.commands.demo, "_measure", refuse)
    monkeypatch.setattr(dopa_rl.session.runner, "run_session", refuse)


@pytest.mark.parametrize("argv", [
    ["fit", "{data}", "--model", "rw-softmax", "--json", "{bad}/fit.json"],
    ["fit", "{data}", "--model", "rw-softmax", "--method", "hier", "--csv", "{bad}/fit.csv"],
    ["simulate", "--task", "bandit", "--model", "rw-softmax", "--out", "{bad}/sim.csv"],
    ["simulate", "--task", "pavlovian", "--model", "rw", "--out", "{bad}/sessions"],
    ["compare", "{data}", "--models", "rw-softmax,rw-softmax-sticky", "--plots", "{bad}/figs"],
    ["run", "examples/classical_conditioning.toml", "--device", "sim", "--out", "{bad}/s.nwb"],
    ["demo", "--out", "{bad}/demo"],
])
def test_an_unwritable_output_folder_is_found_before_computing(choices, tmp_path, capsys, no_compute, argv,
                                                                monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    bad = _unwritable_folder(tmp_path)
    code, _, err = run_cli(capsys, *[a.format(data=choices, bad=bad) for a in argv])
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "cannot write in folder" in err, err
    assert "internal error" not in err


@pytest.mark.parametrize("argv,made", [
    (["simulate", "--task", "pavlovian", "--model", "rw", "--trials", "20", "--out", "{tmp}/new"], True),
    (["simulate", "--task", "bandit", "--model", "rw-softmax", "--trials", "20", "--out", "{tmp}/new/s.csv"], False),
    (["fit", "{data}", "--model", "rw-softmax", "--restarts", "1", "--json", "{tmp}/new/f.json"], False),
    (["compare", "{data}", "--models", "rw-softmax,rw-softmax-sticky", "--restarts", "1", "--plots", "{tmp}/new"],
     True),
    (["compare", "{data}", "--models", "rw-softmax,rw-softmax-sticky", "--restarts", "1", "--plots",
      "{tmp}/new/deeper"], False),
])
def test_every_command_creates_missing_output_folders_by_one_rule(choices, tmp_path, capsys, argv, made):
    """An output folder is created when missing if its parent exists; a file output's folder must exist."""
    code, _, err = run_cli(capsys, *[a.format(data=choices, tmp=tmp_path) for a in argv])
    assert (tmp_path / "new").is_dir() == made
    if made:
        assert code == 0, err
    else:
        assert code == 2 and "does not exist" in err and err.count("\n") == 1, err
