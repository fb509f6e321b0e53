"""Loss potentials: the parameter layout, the MLP loss (torch reference and compiled kernels)."""
