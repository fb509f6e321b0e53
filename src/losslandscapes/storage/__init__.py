"""Storage: the restartable database of minima and transition states, and Parquet artefacts."""
