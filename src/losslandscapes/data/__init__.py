"""Data: LJAT3 and MNIST sources, and each experiment's training/testing sets (split, mislabelling, masks)."""
