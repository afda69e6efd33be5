"""Unit-level and encoding analyses of dopamine recordings: pure functions over arrays.

* :mod:`dopa_rl.analysis.distributional` — reversal points, asymmetries, split-half test, decoding
  (Dabney et al. 2020).
* :mod:`dopa_rl.analysis.kernels` — event-kernel (encoding-model) regression of photometry traces.
* :mod:`dopa_rl.analysis.figures` — matplotlib figures for the above (returns Figure objects).
"""
