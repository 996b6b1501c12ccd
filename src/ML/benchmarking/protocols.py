"""Published protocols as recipe arguments: what a suite's cells must run to be comparable with a paper.

The files are read in the engine (``ML.hyperparams.suites``: a DMC run on a protocol suite gets its arguments
there); these are the pipeline's names for them."""

from __future__ import annotations

from ML.hyperparams.suites import PROTOCOLS_DIR, Protocol, ProtocolError
from ML.hyperparams.suites import known_protocols as known
from ML.hyperparams.suites import load_protocol as load

__all__ = ["PROTOCOLS_DIR", "Protocol", "ProtocolError", "known", "load"]
