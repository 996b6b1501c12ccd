"""Optional experiment tracking: ``wandb=true`` mirrors every eval.csv / train.csv row to Weights & Biases.

``track(config, info, eval_log, train_log)`` returns the two logs unchanged when ``wandb`` is false; else
wrappers whose ``append`` also calls ``wandb.log`` (eval rows as ``eval/<column>``, train rows as
``train/<column>``, against ``step``). Offline (``WANDB_MODE=offline``, or no network) wandb keeps the run
locally for a later ``wandb sync``. Without the package: one clear line asking to install it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ML.errors import UserError
from ML.settings import Settings


@dataclasses.dataclass(frozen=True)
class TrackingSettings(Settings):
    """Experiment tracking beside the CSV logs."""

    wandb: bool         # also log every row to Weights & Biases (the project is the run's ``experiment``)


class _Mirrored:
    """A CSV log whose rows are also sent to a wandb run under ``prefix/``."""

    def __init__(self, log: Any, run: Any, prefix: str):
        self._log, self._run, self._prefix = log, run, prefix

    def append(self, row: dict[str, Any]) -> None:
        self._log.append(row)
        values = {f"{self._prefix}/{k}": v for k, v in row.items() if isinstance(v, (int, float))}
        self._run.log(values, step=int(row.get("step", 0)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def track(config: Mapping[str, Any], info: Any, eval_log: Any, train_log: Any) -> tuple[Any, Any]:
    """The two logs, mirrored to wandb when ``wandb=true``; wandb records the whole resolved ``config``."""
    if not TrackingSettings.from_config(config).wandb:
        return eval_log, train_log
    try:
        import wandb
    except ImportError:
        raise UserError("wandb=true needs the wandb package: pip install wandb") from None
    from ML.runinfo import jsonable

    data = getattr(info, "data", {}) or {}
    name = "/".join(str(data.get(k, "")) for k in ("recipe", "suite", "task", "seed"))
    run = wandb.init(project=str(config.get("experiment") or "UnifiedML"), name=name, reinit=True,
                     config=jsonable(dict(config)))
    return _Mirrored(eval_log, run, "eval"), _Mirrored(train_log, run, "train")


__all__ = ["track"]
