"""How long a run will take: a pilot on this machine (``pilot``) and a model of every job (``model``)."""
