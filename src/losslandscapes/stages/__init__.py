"""One function per workflow step (``cli`` maps step names to them): data, landscapes, analysis."""
