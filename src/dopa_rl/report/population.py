"""Figures for population fits: model comparison, parameter recovery and model recovery.

Every function takes results and a path, draws with matplotlib's headless Agg backend, and writes the PNG
atomically (a failed drawing leaves no file); without a path it returns the PNG bytes."""
from __future__ import annotations

import numpy as np

__all__ = ["comparison_figure", "recovery_figure", "confusion_figure"]


def _figure(nrows=1, ncols=1, size=(6.0, 4.0)):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig, path) -> bytes | None:
    """PNG bytes of ``fig`` (returned when ``path`` is None, else written there atomically)."""
    import io

    from dopa_rl.io.atomic import atomic_write_bytes

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    if path is None:
        return buf.getvalue()
    atomic_write_bytes(path, buf.getvalue())
    return None


def comparison_figure(comp, path=None) -> bytes | None:
    """The comparison figure (:func:`dopa_rl.fit.compare.draw_comparison`) as PNG bytes, or written to ``path``."""
    from dopa_rl.fit.compare import draw_comparison

    fig, _ = _figure(1, 1)
    fig.clear()
    draw_comparison(fig, comp)
    return _save(fig, path)


def recovery_figure(rec, path=None) -> bytes | None:
    """Scatter of fitted against true values, one panel per parameter, with the identity line."""
    names = list(rec.truth.columns)
    fig, ax = _figure(1, len(names), (3.2 * len(names), 3.2))
    for j, name in enumerate(names):
        a = ax[0, j]
        t, f = rec.truth[name].to_numpy(), rec.fitted[name].to_numpy()
        a.scatter(t, f, s=10, alpha=0.7)
        lo, hi = np.nanmin([t.min(), f.min()]), np.nanmax([t.max(), f.max()])
        a.plot([lo, hi], [lo, hi], "k--", lw=1)
        s = rec.stats.loc[name]
        a.set_title(f"{name}: r={s['r']:.2f}, bias={s['bias']:.2g}", fontsize=9)
        a.set_xlabel(f"true {name}")
        a.set_ylabel(f"fitted {name}")
    return _save(fig, path)


def confusion_figure(mrec, path=None) -> bytes | None:
    """Model recovery: P(selected | simulated) by BIC and by random-effects selection."""
    fig, ax = _figure(1, 2, (8.0, 3.8))
    for a, (title, mat) in zip(ax[0], (("by BIC", mrec.confusion_bic), ("by RFX posterior", mrec.confusion_rfx))):
        im = a.imshow(mat.to_numpy(), vmin=0, vmax=1, cmap="Blues")
        K = mat.shape[0]
        a.set_xticks(range(K), mat.columns, rotation=20)
        a.set_yticks(range(K), mat.index)
        for i in range(K):
            for j in range(K):
                a.text(j, i, f"{mat.iat[i, j]:.2f}", ha="center", va="center", fontsize=8)
        a.set_xlabel("selected")
        a.set_ylabel("simulated")
        a.set_title(title)
    fig.colorbar(im, ax=ax[0, 1], shrink=0.8, label="P(selected | simulated)")
    return _save(fig, path)
