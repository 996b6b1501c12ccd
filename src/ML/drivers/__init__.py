"""Drivers feed an agent its experience: ``Interactive`` (an environment) or ``Supervised`` (a dataset).

Both expose ``spec``, ``frames_per_step``, ``episode``, ``open(run_dir, resume)``,
``step(agent, step) -> metrics``, ``evaluate(agent) -> row``, ``state()`` and ``close(keep)``;
the run loop in ``ML.run`` only talks to that interface.
"""

from __future__ import annotations

from typing import Any


def make_driver(config: Any) -> Any:
    """Interactive when ``Env`` is set, Supervised when ``Dataset`` is; one must be."""
    from ML.errors import UserError

    if config.get("Env") is not None:
        from ML.drivers.interactive import Interactive

        return Interactive(config)
    if config.get("Dataset") is not None:
        from ML.drivers.supervised import Supervised

        return Supervised(config)
    raise UserError("nothing to train on: set Env=... (e.g. Env=Classic env.task=CartPole-v1) or "
                    "Dataset=... (e.g. Dataset=Digits), or pick a recipe with task=...")
