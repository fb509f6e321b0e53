"""Transition states: doubly-nudged elastic bands, eigenvector-following, Hessian spectra."""
