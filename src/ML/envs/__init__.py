"""Environments and datasets, each describing itself to the engine with a ``TaskSpec`` (``ML.envs.base``)."""
