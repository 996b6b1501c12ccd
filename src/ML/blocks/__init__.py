"""Architectures and augmentations, named by ``Eyes=``/``Model=``/``Aug=``; shape arguments filled in by
``ML.hyperparams.instantiate``."""
