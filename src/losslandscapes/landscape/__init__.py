"""The landscape engine: quench, basin-hopping, connect, coverage of a sample, network symmetry."""
