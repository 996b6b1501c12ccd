"""Tasks trained together in the pipeline's scores and verdicts, from hand-built run directories (real
run.json and eval.csv files as ML writes them, the real gather / tables / summary code): per-task normalized
rows under their own label, helped and hurt verdicts, the budget rule (each task's own frames, T/k for runs
that do not record them, against runs alone), each task's own protocol card and the grid entry's validation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ML import layout, plot_cli
from ML.benchmarking import analysis, cells, grid, plots, scores, together

TASKS = ["CartPole-v1", "Acrobot-v1"]
THRESHOLD = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0}
RANDOM = {"CartPole-v1": 22.0, "Acrobot-v1": -500.0}
LABEL = "dqn (together: CartPole-v1+Acrobot-v1)"


def card(actions: int, budget: int) -> dict:
    """The environment part of a classic-control protocol card as run.json holds it."""
    return {"observation": "states", "sticky_actions": None, "action_set": f"discrete ({actions} actions)",
            "max_episode_frames": 500, "action_repeat": 1, "frame_stack": 1, "eval_epsilon": 0.0,
            "eval_episodes": 2, "frame_budget": budget, "final_score": f"mean return at {budget} env frames",
            "agent": "DQNAgent"}


ACTIONS = {"CartPole-v1": 2, "Acrobot-v1": 3}


def write_run(root: Path, task: str, seed: int, frames: int, finals: dict[str, float],
              split: dict[str, int] | None = None) -> Path:
    """A complete run of ``dqn``: one task (``finals`` has one entry) or the tasks of ``finals`` together,
    evaluated at 0 and at ``frames`` (its final score: ``finals``); ``split``: each task's own frames and
    protocol card, as ML records them (eval.csv ``frame.<task>``, run.json ``env.tasks[i].protocol``)."""
    run = layout.run_dir(root / "results", "exp", "dqn", "Classic", task, seed)
    run.mkdir(parents=True)
    names = list(finals)
    evals = pd.DataFrame({"step": [0, frames], "frame": [0, frames], "episode": [0, 9], "time": [0.0, 1.0],
                          "episodes": [2, 2]})
    if len(names) == 1:
        evals["score"] = [RANDOM[names[0]], finals[names[0]]]
        env = {"reward_threshold": THRESHOLD[task]}
        protocol = {**card(ACTIONS[task], frames), "eval_envs": 2}
    else:
        for name in names:
            evals[f"score.{name}"] = [RANDOM[name], finals[name]]
        evals["score"] = evals[[f"score.{n}" for n in names]].mean(axis=1)
        env = {"tasks": [{"task": n, "obs_shape": [4], "num_actions": 2, "reward_threshold": THRESHOLD[n]}
                         for n in names], "together": {"replay_share": "equal"}}
        protocol = {**card(3, frames), "max_episode_frames": None, "eval_envs": 2}  # the tasks as a whole
        for entry in env["tasks"] if split else ():
            evals[f"frame.{entry['task']}"] = [0, split[entry["task"]]]
            entry["protocol"] = {**card(ACTIONS[entry["task"]], split[entry["task"]]), "eval_envs": 1}
    evals.to_csv(run / "eval.csv", index=False)
    (run / "run.json").write_text(json.dumps({"status": "complete", "experiment": "exp", "recipe": "dqn",
                                              "suite": "Classic", "task": task, "seed": seed, "env": env,
                                              "protocol": protocol}))
    return run / "run.json"


def baselines(root: Path) -> Path:
    for task, value in RANDOM.items():
        path = root / "baselines" / "Classic" / f"{task}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"task": task, "random": value}))
    return root / "baselines"


def grid_of(root: Path, seeds: int, alone_frames: int, together_frames: int, alone: dict[str, list[float]],
            shared: dict[str, list[float]], split: dict[str, int] | None = None) -> list[Path]:
    runs = [write_run(root, task, s, alone_frames, {task: alone[task][s]}) for task in TASKS for s in range(seeds)]
    runs += [write_run(root, "+".join(TASKS), s, together_frames, {t: shared[t][s] for t in TASKS}, split)
             for s in range(seeds)]
    return runs


def tables(root: Path, runs: list[Path]) -> dict:
    table = scores.gather(runs, baselines(root), "exp", log=lambda *a: None)
    status = cells.table(runs)
    return {"scores": table, "cells": status,
            **analysis.tables(table, root / "out", reps=300, seed=0, cells=status, log=lambda *a: None)}


def test_per_task_rows_normalized_like_alone_runs_and_helped_hurt(tmp_path: Path):
    # CartPole: together ends at 450-470, alone at 100-120 (helped); Acrobot: together -400.., alone -90.. (hurt)
    frames = tables(tmp_path, grid_of(
        tmp_path, 3, 200, 400,
        alone={"CartPole-v1": [100, 110, 120], "Acrobot-v1": [-90, -95, -85]},
        shared={"CartPole-v1": [450, 460, 470], "Acrobot-v1": [-400, -420, -410]}))
    rows = frames["scores"]
    mine = rows[rows["recipe"] == LABEL]
    assert set(mine["task"]) == set(TASKS) and mine["normalized"].notna().all()  # no empty A+B row
    last = mine[(mine["task"] == "CartPole-v1") & (mine["seed"] == 0)].iloc[-1]
    assert last["score"] == 450 and abs(last["normalized"] - (450 - 22) / (475 - 22)) < 1e-12
    assert last["frame"] == 200  # 400 frames over 2 tasks: the per-task budget share
    assert set(rows[rows["recipe"] == "dqn"]["task"]) == set(TASKS)  # alone runs kept apart, not pooled
    assert set(frames["cells"]["recipe"]) == {"dqn", LABEL}

    shared = frames["together"].set_index("task")
    assert shared.loc["CartPole-v1", "verdict"] == "helped" and shared.loc["CartPole-v1", "poi"] == 1.0
    assert shared.loc["Acrobot-v1", "verdict"] == "hurt" and shared.loc["Acrobot-v1", "poi"] == 0.0
    assert shared.loc["CartPole-v1", "ci_low"] > 0.5 and shared.loc["Acrobot-v1", "ci_high"] < 0.5
    assert shared.loc["CartPole-v1", "together_iqm"] > shared.loc["CartPole-v1", "alone_iqm"]
    assert "sharing helped (P(together > alone) = 1.00" in shared.loc["CartPole-v1", "sentence"]
    assert (tmp_path / "out" / "together.csv").is_file()
    assert set(analysis.read_tables(tmp_path / "out")["together"]["verdict"]) == {"helped", "hurt"}

    figure = plots.together_vs_alone(frames["together"], tmp_path / "out" / "together.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "hurt" in figure.with_suffix(".svg").read_text()
    summary = analysis.summary(tmp_path / "out" / "summary.md", "exp", rows, frames, frames["cells"], [])
    text = summary.read_text()
    assert text.index("## Verdicts") < text.index("## Together vs alone") < text.index("## Headline")
    assert "On Acrobot-v1 (Classic), dqn trained together with CartPole-v1: sharing hurt" in text
    headline = (tmp_path / "out" / "report_headline.rst").read_text()
    assert headline.index("Verdicts") < headline.index("Together vs alone")


def test_the_budget_rule_compares_t_over_k_and_never_two_budgets(tmp_path: Path):
    same = {"CartPole-v1": [100, 110, 120], "Acrobot-v1": [-90, -95, -85]}
    # together 400 frames over 2 tasks = 200 per task, against alone runs of 400 frames: two budgets
    frames = tables(tmp_path, grid_of(tmp_path, 3, 400, 400, alone=same, shared=same))
    shared = frames["together"].set_index("task")
    assert set(shared["verdict"]) == {"cannot be told"} and set(shared["why"]) == {"different budgets"}
    assert shared["poi"].isna().all()
    assert "cannot be told: not compared (different budgets: dqn ends at 400 frames, " \
           f"{LABEL} at 200 on CartPole-v1)" in shared.loc["CartPole-v1", "sentence"]


def test_a_different_protocol_on_the_task_cannot_be_told(tmp_path: Path):
    same = {"CartPole-v1": [100, 110, 120], "Acrobot-v1": [-90, -95, -85]}
    runs = grid_of(tmp_path, 3, 200, 400, alone=same, shared=same)
    for run_json in runs[-3:]:  # the together runs evaluated 5 episodes, the runs alone 2
        info = json.loads(run_json.read_text())
        info["protocol"]["eval_episodes"] = 5
        run_json.write_text(json.dumps(info))
    shared = tables(tmp_path, runs)["together"].set_index("task")
    assert set(shared["why"]) == {"different protocols"}
    assert "eval_episodes 2 vs 5 on CartPole-v1" in shared.loc["CartPole-v1", "sentence"]


def test_each_task_compared_at_its_own_frames_on_its_own_card(tmp_path: Path):
    """A run recording each task's frames (CartPole 100, Acrobot 300 of 400) and card: each task's rows carry
    its own frames, compared with runs alone at those frames; its own action set and episode cap are checked
    (a whole-run card would hold the widest action set and no cap), its evaluation envs are not."""
    same = {"CartPole-v1": [100, 110, 120], "Acrobot-v1": [-90, -95, -85]}
    split = {"CartPole-v1": 100, "Acrobot-v1": 300}
    frames = tables(tmp_path, grid_of(tmp_path, 3, 100, 400, alone=same, shared=same, split=split))
    rows = frames["scores"]
    last = rows[rows["recipe"] == LABEL].groupby("task")["frame"].max()
    assert last.to_dict() == split  # not 200 each (T/k)
    shared = frames["together"].set_index("task")
    assert shared.loc["CartPole-v1", "verdict"] == "no difference"  # 100 frames against 100 alone, one card
    assert shared.loc["Acrobot-v1", "why"] == "different budgets"  # 300 against 100
    assert "dqn ends at 100 frames, " f"{LABEL} at 300 on Acrobot-v1" in shared.loc["Acrobot-v1", "sentence"]
    cards = analysis.run_task_cards(frames["cells"])
    assert cards[("exp", LABEL, "Classic", "CartPole-v1")]["action_set"] == "discrete (2 actions)"

    runs = grid_of(tmp_path / "cap", 3, 100, 400, alone=same, shared=same, split=split)
    for run_json in runs[-3:]:  # CartPole's own card says another episode cap than its runs alone
        info = json.loads(run_json.read_text())
        info["env"]["tasks"][0]["protocol"]["max_episode_frames"] = 200
        run_json.write_text(json.dumps(info))
    shared = tables(tmp_path / "cap", runs)["together"].set_index("task")
    assert shared.loc["CartPole-v1", "why"] == "different protocols"
    assert "max_episode_frames 500 vs 200 on CartPole-v1" in shared.loc["CartPole-v1", "sentence"]


def test_equal_budgets_compare_and_one_seed_cannot_be_told(tmp_path: Path):
    same = {"CartPole-v1": [100], "Acrobot-v1": [-90]}
    frames = tables(tmp_path, grid_of(tmp_path, 1, 200, 401, alone=same, shared=same))  # 200.5: within 2%
    shared = frames["together"].set_index("task")
    assert set(shared["verdict"]) == {"cannot be told"} and shared.loc["CartPole-v1", "poi"] == 0.5
    assert "cannot be told (n = 1 each; need ≥ 3): P(together > alone) = 0.50, CI n/a" in \
        shared.loc["CartPole-v1", "sentence"]
    assert shared["together_low"].isna().all()  # CI n/a below 3 runs, never [x, x]


def test_plot_of_a_recipe_keeps_its_together_runs_under_their_own_label(tmp_path: Path):
    """``Plot task=dqn`` (the recipe's name, exactly) keeps the recipe's together runs beside its runs alone,
    each under its own label, and compares them; a together label's recipe is the one it trained with."""
    same = {"CartPole-v1": [100, 110, 120], "Acrobot-v1": [-90, -95, -85]}
    grid_of(tmp_path, 3, 100, 200, alone=same, shared=same, split={"CartPole-v1": 100, "Acrobot-v1": 100})
    baselines(tmp_path / "results")
    assert plot_cli.main([f"results={tmp_path / 'results'}", "experiment=exp", "task=dqn", "reps=50"]) == 0
    out = tmp_path / "results" / "exp" / "plots" / "dqn"
    assert set(pd.read_csv(out / "scores.csv")["recipe"]) == {"dqn", LABEL}
    assert set(pd.read_csv(out / "together.csv")["verdict"]) == {"no difference"}
    assert plot_cli.recipe_of(LABEL) == "dqn" and plot_cli.recipe_of("dqn_atari") == "dqn_atari"
    assert plot_cli.main([f"results={tmp_path / 'results'}", "experiment=exp", "task=dqn_atari"]) == 2


def config(entry: dict) -> dict:
    return grid.validate({"seeds": [0, 1], "grid": [{"recipe": "dqn", "suite": "Classic", **entry}]})


def test_a_together_entry_expands_to_one_cell_per_seed():
    cells_ = grid.expand(config({"tasks": ["CartPole-v1"], "together": TASKS, "args": {"train_steps": 400}}))
    assert [c.task for c in cells_] == ["CartPole-v1"] * 2 + ["CartPole-v1+Acrobot-v1"] * 2
    shared = [c for c in cells_ if c.together]
    assert len(shared) == 2 and shared[0].tasks == tuple(TASKS)
    argv = shared[0].argv("exp", "results", 1)
    assert "env.task=[CartPole-v1,Acrobot-v1]" in argv and "train_steps=400" in argv
    assert shared[0].run_dir("results", "exp") == Path("results/exp/runs/dqn/Classic/CartPole-v1+Acrobot-v1/0")
    assert [c.task for c in grid.expand(config({"together": TASKS}))] == ["CartPole-v1+Acrobot-v1"] * 2


@pytest.mark.parametrize(("entry", "expected"), [
    ({"together": ["CartPole-v1", "Pong"]}, "grid[0].together: Pong not in suite classic"),
    ({"recipe": "classify", "together": TASKS}, "recipe classify has Agent ClassifierAgent; only DQNAgent"),
    ({"recipe": "nosuchrecipe", "together": TASKS}, "grid[0].recipe: unknown recipe 'nosuchrecipe'"),
    ({"suite": "dmc_easy", "together": ["cartpole_balance", "walker_walk"]}, "tasks train together only in Classic"),
    ({"together": ["CartPole-v1"]}, "is too short"),
])
def test_a_bad_together_entry_is_one_line(entry: dict, expected: str):
    with pytest.raises(grid.ConfigError) as error:
        grid.expand(config(entry))
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_labels_round_trip():
    assert together.label("dqn", TASKS) == LABEL and together.parse(LABEL) == ("dqn", TASKS)
    assert together.parse("dqn") is None and together.parse("DrQ-v2 (published)") is None
