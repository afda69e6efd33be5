"""Figures of posterior fits: the posterior predictive check of choices by trial (``fit --method bayes
--plots DIR``), and any result's own figure as PNG bytes.

Drawn with matplotlib's headless Agg backend; PNGs are written atomically (a failed drawing leaves no file)."""
from __future__ import annotations

import numpy as np

__all__ = ["ppc_figure", "draw_ppc", "result_png"]


def draw_ppc(fig, table, title: str = "") -> None:
    """Draw a posterior predictive table (:meth:`~dopa_rl.fit.bayes_result.BayesResult.posterior_predictive`):
    one panel per option (two options: option 1 only), the observed fraction of subjects choosing it by
    trial against the model's mean choice probability with its 94% HDI band."""
    options = sorted(table["option"].unique())
    shown = options[1:] if len(options) == 2 else options
    axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
    for ax, k in zip(axes, shown):
        t = table[table["option"] == k].sort_values("trial")
        ax.fill_between(t["trial"], t["low"], t["high"], color="C0", alpha=0.3, lw=0,
                        label="model: P(choice) posterior, 94% HDI")
        ax.plot(t["trial"], t["predicted"], color="C0", lw=1.2, label="model: posterior mean P(choice)")
        ax.plot(t["trial"], t["observed"], ".", color="k", ms=3, label="observed fraction of subjects")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"P(choice = option {k})")
        ax.legend(fontsize=6, frameon=False, loc="lower right")
    axes[-1].set_xlabel("trial (position in each subject's series)")
    axes[0].set_title(title or "posterior predictive check: choice probability by trial", fontsize=9)


def _png(fig, path=None) -> bytes | None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    if path is None:
        return buf.getvalue()
    from dopa_rl.io.atomic import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue())
    return None


def ppc_figure(result, data, path=None, *, model=None, n_draws: int | None = 400) -> bytes | None:
    """The posterior predictive check of ``result`` (a BayesResult of a choice model) on ``data`` (the table it
    was fitted to), as PNG bytes or written to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    table = result.posterior_predictive(data, model=model, n_draws=n_draws)
    n_panels = max(len(np.unique(table["option"])) - (1 if table["option"].nunique() == 2 else 0), 1)
    fig = Figure(figsize=(6.4, 2.6 * n_panels + 0.6), dpi=110, layout="constrained")
    draw_ppc(fig, table, f"{result.model_name}: posterior predictive check, {len(result.subjects)} subjects")
    return _png(fig, path)


def result_png(result) -> bytes:
    """``result.plot()`` as PNG bytes."""
    return _png(result.plot())
