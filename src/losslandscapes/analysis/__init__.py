"""Analysis of finished landscapes: metrics per minimum, tables, claims, disconnectivity graphs, figures."""
