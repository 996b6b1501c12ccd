"""Tasks of any kinds in one run: ``together:`` (task specs) and ``share:`` (parts) → each task's own config.

Each entry of ``together`` is a task spec, a recipe name and its overrides (``{task: classify, Dataset:
Digits}``), resolved as ``ML task=classify Dataset=Digits`` would be; the run hands every task its own seed,
threads and device, and its share of ``train_steps`` (``budgets``). The parts named in ``share`` are the run's
(``Trunk``/``trunk`` at the top level of the recipe) and are built once, by ``ML.agents.together``. Every
refusal here is one line naming its fix (docs/together.md).
"""

from __future__ import annotations

import functools
from typing import Any

from ML.errors import UserError

SHAREABLE = ("Eyes", "Trunk")  # the parts one module can serve for every task (their inputs made to meet)
RUN_KEYS = ("seed", "threads", "device", "accelerate")  # the run's settings, the same for every task
PER_TASK = ("task", "train_steps")  # of the run's own settings, what each task spec gives: its recipe and budget
TASK_PARTS = ("Agent", "Env", "Dataset", "TestDataset")  # each task's own, never the run's


@functools.cache
def per_run() -> frozenset[str]:
    """The settings of the whole run, which a task spec may not set: the keys of the run's own settings
    (``RunSettings``) but ``PER_TASK``, of together's (``AcrossSettings``), and the process-wide ones of
    ``AccelSettings`` (``process_wide``): a setting added to one of them is the run's without a list here."""
    from ML.accelerate import AccelSettings
    from ML.drivers.settings import AcrossSettings
    from ML.runsettings import RunSettings

    return (RunSettings.claims() - set(PER_TASK)) | AcrossSettings.claims() | set(AccelSettings.process_wide)


def entries(config: Any) -> list[dict[str, Any]]:
    """``together``'s task specs, checked: two or more mappings, each naming its recipe (``task``)."""
    tasks = config.get("together") or []
    if len(tasks) < 2 or not all(isinstance(t, dict) and isinstance(t.get("task"), str) for t in tasks):
        raise UserError(f"together={tasks}: give two or more task specs, each a mapping naming its recipe, e.g. "
                        "together=[{task: classify, Dataset: Digits}, {task: dqn, env.task: CartPole-v1}]")
    for part in TASK_PARTS:
        if config.get(part) is not None and not (part == "Agent" and config.get(part) == "TogetherAgent"):
            raise UserError(f"{part}={config.get(part)} is set for the whole run, but with together: each task "
                            f"has its own; put {part} in the task specs (e.g. {{task: dqn, {part}: ...}})")
    for i, task in enumerate(tasks):
        run_level = [k for k in task if k.split(".")[0] in per_run()]
        if run_level:
            raise UserError(f"together[{i}] sets {run_level[0]}, a setting of the whole run; set it beside "
                            "together: (at the top level), not in a task spec")
    return [dict(t) for t in tasks]


def budgets(config: Any) -> list[int]:
    """Each task's training steps: its own ``train_steps`` when every spec gives one (they must add up to the
    run's), else the run's ``train_steps`` split equally (the first tasks take the remainder)."""
    tasks = entries(config)
    total = int(config.train_steps)
    given = [t.get("train_steps") for t in tasks]
    if any(g is not None for g in given):
        steps = [g if isinstance(g, int) and not isinstance(g, bool) and g >= 1 else 0 for g in given]
        if 0 in steps or sum(steps) != total:
            raise UserError(f"together: per-task train_steps {given} must be given for every task, each ≥ 1, "
                            f"and add up to the run's train_steps={total}; set train_steps={sum(steps)} "
                            "or give every task its budget")
        return steps
    if total < len(tasks):
        raise UserError(f"train_steps={total} is less than one step per task ({len(tasks)} tasks); raise it")
    return [total // len(tasks) + (i < total % len(tasks)) for i in range(len(tasks))]


def shared(config: Any) -> list[str]:
    """``share``'s part names, checked: known, shareable, set."""
    from ML.agents.reads import agent_parts, set_parts

    names = list(config.get("share") or [])
    for name in names:
        if name not in agent_parts():
            raise UserError(f"share: {name} is not a part; share one of {', '.join(SHAREABLE)}")
        if name not in SHAREABLE:
            raise UserError(f"share: {name} cannot be shared across tasks (each task's {name} is its own: outputs, "
                            f"optimiser, sizes); share one of {', '.join(SHAREABLE)}")
    if "Trunk" in names and config.get("Trunk") is None:
        raise UserError("share: [Trunk] but the run sets no Trunk; set Trunk=MLP (trunk.* its arguments) beside it")
    unshared = [p for p in set_parts(config) if p not in names]
    if unshared:
        raise UserError(f"{unshared[0]} is set for the whole run but not shared; put it in the task specs of "
                        f"together:, or add it to share:")
    return names


def resolved(config: Any) -> list[Any]:
    """Each task's config as its own run would resolve it: its recipe and overrides, the run's settings and
    its budget (what the entry's key check reads, ``ML.claims``)."""
    from ML.hyperparams import resolve_config

    run = {k: config.get(k) for k in RUN_KEYS}
    return [resolve_config((), {**{k: v for k, v in task.items() if k != "train_steps"}, **run,
                                "train_steps": budget, "progress": False})
            for task, budget in zip(entries(config), budgets(config), strict=True)]


def task_configs(config: Any) -> list[Any]:
    """Each task's config (``resolved``); with a shared Trunk, its Pool is its own ``project`` to
    ``share_width`` features (where the Trunk's input meets)."""
    from ML.blocks.together import project

    subs, names = resolved(config), shared(config)
    for i, sub in enumerate(subs):
        if "Trunk" in names:
            if sub.get("Pool") is not None:
                raise UserError(f"together[{i}] sets Pool, which a shared Trunk takes for the task's projection "
                                f"to share_width; drop Pool from together[{i}]")
            sub.update(Pool=project, pool={"width": int(config.share_width)})
    return subs
