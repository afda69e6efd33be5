"""Fitting: MLE and MAP (explicit priors) with restarts, standard errors, information criteria, results."""
from dopa_rl.fit.mle import fit
from dopa_rl.fit.priors import Prior
from dopa_rl.fit.results import FitResult

__all__ = ["fit", "FitResult", "Prior"]
