"""Figures and reports (matplotlib, Agg backend: no display needed)."""
