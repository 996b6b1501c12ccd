"""Timing helpers the benchmark scripts share (``benchmarks/`` is on ``sys.path`` when one runs as a script)."""

from __future__ import annotations

import resource


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
