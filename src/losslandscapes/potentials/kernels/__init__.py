"""Compiled CPU kernels (numba) for dense tanh MLP losses."""
