"""Fitting: MLE and MAP with restarts, standard errors, information criteria, results objects."""
from dopa_rl.fit.mle import fit
from dopa_rl.fit.results import FitResult

__all__ = ["fit", "FitResult"]
