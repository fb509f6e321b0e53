"""Optimisation: the GMIN-style L-BFGS with its settings and result type, and gradient flow."""
