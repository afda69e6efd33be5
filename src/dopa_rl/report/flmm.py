"""Figures of a functional mixed model (:class:`dopa_rl.neural.flmm_result.FLMMResult`), written to a folder."""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["save_flmm_figures"]


def save_flmm_figures(result, folder, *, event_name: str = "event", titles: dict[str, str] | None = None) -> list[Path]:
    """Write the coefficient figures of ``result`` to ``folder`` (which exists).

    Parameters
    ----------
    result : FLMMResult
        The fitted model.
    folder : str or os.PathLike
        Output folder.
    event_name : str
        What time 0 is, for the x axis (``cue``, ``cue_time``...).
    titles : dict, optional
        Panel titles by coefficient name.

    Returns
    -------
    list of pathlib.Path
        ``flmm_coefficients.png`` (every coefficient side by side, as in the paper's figures) and one
        ``flmm_<coefficient>.png`` per coefficient.
    """
    from dopa_rl.report.neural import save

    folder = Path(folder)
    out = [save(result.plot(event_name=event_name, titles=titles), folder / "flmm_coefficients.png")]
    for name in result.names:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "coef"
        out.append(save(result.plot(coefficients=[name], event_name=event_name, titles=titles),
                        folder / f"flmm_{slug}.png"))
    return out
