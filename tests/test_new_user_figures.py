"""Issue 15 item 5, figures: every figure names what it shows (which session when it draws one of several),
with units on its axes, ids rather than indices, legends of names (not "C0/C1"), no legend entry for
something that cannot happen, and a labelled colour bar for every image (and wherever the title promises one)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dopa_rl.cli import main

UNIT = re.compile(r"\(.+\)|\btrial\b|\bprobability\b|\blicks per trial\b")


def _axes_with_data(fig):
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar") and (ax.lines or ax.images or ax.collections)]


def check_figure(fig, where: str) -> None:
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    images = [ax for ax in fig.axes if ax.images and not hasattr(ax, "_colorbar")]
    assert len(bars) >= len(images), f"{where}: {len(images)} image(s) but {len(bars)} colour bar(s)"
    for bar in bars:
        label = bar.get_ylabel() or bar.get_xlabel()
        assert label and label.strip() not in ("z", "Hz"), f"{where}: colour bar label {label!r}"
    titles = [ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""]
    if any("colour" in t or "color" in t for t in titles):
        assert bars, f"{where}: the title promises a colour bar that is not there"
    for ax in _axes_with_data(fig):
        for text, what in ((ax.get_xlabel(), "x"), (ax.get_ylabel(), "y")):
            shared = (ax.get_shared_x_axes() if what == "x" else ax.get_shared_y_axes()).get_siblings(ax)
            label_of = (lambda a: a.get_xlabel()) if what == "x" else (lambda a: a.get_ylabel())
            if not text and any(label_of(a) for a in shared if a is not ax):
                continue   # a twin or a panel sharing a labelled axis
            assert text, f"{where}: {what} axis without a label ({ax.get_title()!r})"
            assert UNIT.search(text), f"{where}: {what} axis label {text!r} has no unit"
        legend = ax.get_legend()
        if legend is not None:
            for entry in legend.get_texts():
                assert not re.fullmatch(r".*\bC\d+\b.*", entry.get_text()), f"{where}: legend {entry.get_text()!r}"
    for t in titles:
        assert not re.search(r"\bC\d+:", t), f"{where}: title {t!r} uses colour codes"


@pytest.fixture
def captured(monkeypatch):
    """Every figure the report functions save, kept for checking (and still written)."""
    import dopa_rl.report.neural as neural
    import dopa_rl.report.population as population
    import dopa_rl.report.session as session

    figs = []
    for mod, name in ((neural, "save"), (population, "_save"), (session, "_save")):
        real = getattr(mod, name)

        def keep(fig, path=None, _real=real):
            figs.append((fig, str(path)))
            return _real(fig, path)

        monkeypatch.setattr(mod, name, keep)
    return figs


def _sessions(tmp_path, n=2):
    from dopa_rl.io.nwb_write import write_session
    from dopa_rl.io.synthetic import simulate_session

    return [write_session(tmp_path / f"s{k}.nwb", simulate_session("pavlovian", "rw", params={"alpha": 0.2}, seed=k,
                                                                    n_trials=60, subject=f"m{k}"))
            for k in range(n)]


def test_regress_figures_say_which_session_and_carry_units(tmp_path, capsys, captured):
    paths = _sessions(tmp_path)
    code = main(["regress", *map(str, paths), "--model", "rw-pavlovian", "--signal", "photometry",
                 "--params", "alpha=0.2", "--plots", str(tmp_path / "figs")])
    assert code == 0, capsys.readouterr().err
    assert len(captured) == 7
    for fig, path in captured:
        check_figure(fig, path)
        if "response_vs_rpe" not in path:
            title = " ".join(ax.get_title() for ax in fig.axes)
            assert "subject m0, session" in title and "first of 2 sessions" in title, (path, title)


def test_session_figures_name_trial_types_and_never_show_cs_minus_rewarded(tmp_path, captured):
    from dopa_rl.report.session import licks_value_figure, raster_figure, rpe_figure

    rng = np.random.default_rng(0)
    n = 40
    kind = np.where(np.arange(n) % 4 == 3, "CS-", "CS+")
    reward = np.where((kind == "CS+") & (rng.random(n) < 0.9), 4.0, 0.0)
    cue = np.arange(n) * 5.0 + 1.0
    trials = pd.DataFrame({"trial": np.arange(n), "trial_type": kind, "reward": reward, "cue_time": cue,
                           "outcome_time": cue + 1.5, "licks": rng.integers(0, 5, n), "value": rng.random(n),
                           "rpe_cue": rng.normal(size=n), "rpe_outcome": rng.normal(size=n)})
    licks_value_figure(trials, tmp_path / "a.png")
    rpe_figure(trials, tmp_path / "b.png")
    raster_figure(trials, np.sort(rng.uniform(0, cue[-1] + 3, 300)), tmp_path / "c.png")
    for fig, path in captured:
        check_figure(fig, path)
        entries = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        assert "CS- rewarded" not in entries, (path, entries)
    raster = captured[2][0]
    assert {t.get_text() for t in raster.axes[0].get_legend().get_texts()} == {"CS+ trials", "CS- trials"}


def test_distributional_figure_has_its_colour_bar_and_names_the_file(tmp_path, capsys, captured):
    from dopa_rl.io.nwb_write import write_session
    from dopa_rl.io.synthetic import simulate_magnitude_session

    path = write_session(tmp_path / "units.nwb", simulate_magnitude_session(12, 300, seed=3))
    code = main(["distributional", str(path), "--signal", "units", "--splits", "20", "--plots", str(tmp_path / "f")])
    assert code == 0, capsys.readouterr().err
    for fig, where in captured:
        check_figure(fig, where)
    by_mag = next(fig for fig, where in captured if "response_by_magnitude" in where)
    assert "units.nwb" in by_mag.axes[0].get_title()
    assert any(ax.get_ylabel().startswith("asymmetry tau") for ax in by_mag.axes if hasattr(ax, "_colorbar"))


def test_recovery_figures_name_the_parameter(tmp_path, capsys, captured):
    code = main(["recover-params", "--model", "rw-softmax", "--subjects", "6", "--trials", "60", "--restarts", "1",
                 "--plots", str(tmp_path / "figs")])
    assert code == 0, capsys.readouterr().err
    (fig, where), = captured
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert labels == ["true alpha", "true beta"], labels
