"""Energy landscapes of neural-network loss functions (Chitturi, Verpoort, Lee, Wales, MLST 2020)."""

__version__ = "0.1.0"
