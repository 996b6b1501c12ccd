"""rliable's aggregate metrics on hand-checkable arrays, and the stratified bootstrap's intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ML.benchmarking import stats

# 4 runs (rows) x 3 tasks (columns)
SCORES = np.array([
    [0.0, 0.5, 0.1],
    [0.2, 0.5, 0.1],
    [0.4, 2.0, 0.1],
    [1.0, 3.0, 0.1],
])


def test_point_estimates_by_hand():
    # flattened & sorted: 0 .1 .1 .1 .1 .2 | .4 .5 .5 1 | 2 3 -> 25% cut (3 each side) leaves .1 .1 .2 .4 .5 .5
    assert stats.iqm(SCORES) == pytest.approx(0.3)
    assert stats.iqm(SCORES) == pytest.approx(sps.trim_mean(SCORES.ravel(), 0.25))
    # per-task means: 0.4, 1.5, 0.1
    assert stats.median(SCORES) == pytest.approx(0.4)
    assert stats.mean(SCORES) == pytest.approx(2.0 / 3)
    # max(0, 1 - x): task 1: 1 .8 .6 0, task 2: .5 .5 0 0, task 3: .9 x 4 -> 7.0 / 12
    assert stats.optimality_gap(SCORES) == pytest.approx(7.0 / 12)


def test_iqm_of_eight_values_is_mean_of_middle_four():
    assert stats.iqm(np.arange(8.0).reshape(8, 1)) == pytest.approx(3.5)
    assert stats.iqm([np.array([0.0, 1.0, 2.0, 100.0]), np.array([3.0, 4.0, 5.0, -100.0])]) == pytest.approx(2.5)


def test_ragged_tasks_are_allowed():
    tasks = [np.array([0.2, 0.4]), np.array([1.0, 1.0, 1.0])]
    assert stats.mean(tasks) == pytest.approx((0.3 + 1.0) / 2)
    assert set(stats.bootstrap(tasks, reps=50)) == set(stats.METRICS)


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    a = stats.bootstrap(SCORES, reps=2000, seed=3)
    for metric, (value, low, high) in a.items():
        assert low <= value <= high, metric
        assert low < high, metric
        assert value == pytest.approx(stats.aggregate(SCORES, metric))
    assert stats.bootstrap(SCORES, reps=2000, seed=3) == a
    assert stats.bootstrap(SCORES, reps=2000, seed=4) != a


def test_bootstrap_is_stratified_within_tasks():
    # task 1 always scores 0, task 2 always 1: any within-task resample keeps mean 0.5 exactly,
    # whereas resampling across tasks would not
    scores = np.array([[0.0, 1.0]] * 5)
    value, low, high = stats.bootstrap(scores, ["mean"], reps=500)["mean"]
    assert value == low == high == 0.5


def test_bootstrap_scales_without_a_loop_over_reps():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(10, 26))
    out = stats.bootstrap(scores, reps=20000, seed=0)
    assert out["iqm"][1] < out["iqm"][0] < out["iqm"][2]


def _tidy(values: dict[str, list[list[float]]], steps=(0, 10, 20)) -> pd.DataFrame:
    rows = []
    for task, per_seed in values.items():
        for seed, curve in enumerate(per_seed):
            for step, v in zip(steps, curve, strict=True):
                rows.append(dict(experiment="e", recipe="r", suite="S", task=task, seed=seed, step=step,
                                 frame=step, time=0.0, score=v, normalized=v))
    return pd.DataFrame(rows)


def test_compute_final_and_curves():
    frame = _tidy({"a": [[0, 0.5, 1.0], [0, 0.4, 0.8], [0, 0.3, 0.6]], "b": [[0, 0.1, 0.2], [0, 0.3, 0.6],
                                                                            [0, 0.2, 0.4]]})
    table = stats.compute(frame, reps=200, seed=0, log=lambda *_: None)
    assert list(table.columns) == stats.COLUMNS
    final = table[(table.step == "final") & (table.metric == "mean")].iloc[0]
    assert final.value == pytest.approx(((1.0 + 0.8 + 0.6) / 3 + (0.2 + 0.6 + 0.4) / 3) / 2)
    assert final.ci_low < final.value < final.ci_high
    curve = stats.curves(table)
    assert sorted(curve.step.unique()) == [0, 10, 20]
    at0 = curve[(curve.step == 0) & (curve.metric == "optimality_gap")].iloc[0]
    assert at0.value == at0.ci_low == at0.ci_high == 1.0  # every run scores 0 at step 0: exact, from 3 runs


def test_too_few_runs_give_no_interval():
    # 2 runs of task b (MIN_RUNS = 3): the point estimates stay, every interval is NaN (never [x, x])
    frame = _tidy({"a": [[0, 0.5, 1.0], [0, 0.4, 0.8], [0, 0.3, 0.6]], "b": [[0, 0.1, 0.2], [0, 0.3, 0.6]]})
    table = stats.compute(frame, reps=200, seed=0, log=lambda *_: None)
    assert table.value.notna().all() and table.ci_low.isna().all() and table.ci_high.isna().all()
    profile = stats.profiles(stats.final_scores(frame), reps=50)
    assert profile.value.notna().all() and profile.ci_low.isna().all()


def test_compute_adds_all_suite_for_recipes_on_several_suites():
    one = _tidy({"a": [[0, 0.5, 1.0]]})
    two = _tidy({"b": [[0, 0.2, 0.4]]}).assign(suite="T")
    table = stats.compute(pd.concat([one, two]), reps=50, log=lambda *_: None)
    assert sorted(table.suite.unique()) == ["S", "T", "all"]


def test_final_score_is_the_mean_over_the_last_window():
    frame = _tidy({"a": [[0.0, 0.5, 1.0]]}, steps=(0, 95, 100))
    # last 10% of 100 steps: steps 95 and 100 -> (0.5 + 1.0) / 2
    assert stats.final_scores(frame, 0.1).normalized.iloc[0] == pytest.approx(0.75)
    assert stats.final_scores(frame, 0.0).normalized.iloc[0] == pytest.approx(1.0)
    assert stats.final_scores(frame, 1.0).normalized.iloc[0] == pytest.approx(0.5)
    table = stats.compute(frame, reps=20, log=lambda *_: None, window=0.1)
    final = table[(table.step == "final") & (table.metric == "mean")].iloc[0]
    assert final.value == pytest.approx(0.75)


def test_bootstrap_steps_match_the_single_step_bootstrap():
    rng = np.random.default_rng(1)
    tasks = [rng.random((5, 3)), rng.random((4, 3))]
    curve = stats.bootstrap_steps(tasks, reps=300, seed=7, chunk_bytes=1)  # one step per chunk
    single = stats.bootstrap([t[:, 2] for t in tasks], reps=300, seed=7)
    for metric in stats.METRICS:
        np.testing.assert_allclose(curve[metric][:, 2], single[metric])


def test_probability_of_improvement_by_hand():
    # task 1: x = {1, 2}, y = {0, 2}: pairs x>y: (1,0) (2,0); ties: (2,2) -> (2 + 0.5) / 4 = 0.625
    # task 2: x always above y -> 1.0; average over tasks: 0.8125
    x = [np.array([1.0, 2.0]), np.array([5.0, 6.0])]
    y = [np.array([0.0, 2.0]), np.array([1.0, 2.0])]
    poi, low, high = stats.probability_of_improvement(x, y, reps=500, seed=0)
    assert poi == pytest.approx(0.8125)
    assert low <= poi <= high and high <= 1.0
    back, _, _ = stats.probability_of_improvement(y, x, reps=10)
    assert back == pytest.approx(1 - 0.8125)
    same, lo, hi = stats.probability_of_improvement([np.ones(3)], [np.ones(3)], reps=50)
    assert same == lo == hi == 0.5


def test_verdicts_and_seeds_needed():
    assert stats.verdict(0.9, 0.7, 0.99, 5)[0] == "better"
    assert stats.verdict(0.1, 0.01, 0.3, 5)[0] == "worse"
    word, needed = stats.verdict(0.6, 0.4, 0.8, 5)
    # half-width 0.2, |P - 0.5| = 0.1: 5 x (0.2 / 0.1)^2 = 20 seeds
    assert word == "no difference" and needed == 20
    assert np.isnan(stats.verdict(0.5, 0.3, 0.7, 5)[1])


def test_performance_profile_by_hand():
    # task 1 runs {0.2, 0.6}, task 2 runs {0.8, 1.0}: above 0.5 -> (1/2 + 2/2) / 2 = 0.75; above 0.9 -> 0.25
    tasks = [np.array([0.2, 0.6]), np.array([0.8, 1.0])]
    value, low, high = stats.performance_profile(tasks, np.array([0.0, 0.5, 0.9, 1.0]), reps=400)
    np.testing.assert_allclose(value, [1.0, 0.75, 0.25, 0.0])
    assert (low <= value + 1e-12).all() and (value <= high + 1e-12).all()
    assert low[0] == high[0] == 1.0 and low[3] == high[3] == 0.0


def test_comparisons_table_per_pair_of_recipes():
    rng = np.random.default_rng(0)
    rows = []
    for recipe, shift in (("good", 0.5), ("bad", 0.0), ("same", 0.0)):
        for task in ("t1", "t2"):
            for seed in range(5):
                rows.append(dict(experiment="e", recipe=recipe, suite="S", task=task, seed=seed, step=10, frame=10,
                                 time=1.0, score=0.0, normalized=shift + rng.random() * 0.1))
    finals = stats.final_scores(pd.DataFrame(rows))
    table = stats.comparisons(finals, reps=300).set_index(["x", "y"])
    assert list(table.columns) == [c for c in stats.COMPARISON_COLUMNS if c not in ("x", "y")]
    assert table.loc[("bad", "good"), "verdict"] == "worse" and table.loc[("bad", "good"), "poi"] == 0.0
    assert table.loc[("good", "same"), "verdict"] == "better"
    assert "good is better than same" in table.loc[("good", "same"), "sentence"]
    assert table.loc[("bad", "same")].tasks == 2 and table.loc[("bad", "same")].seeds == 5


def _finals(arms: dict[str, dict[str, list[float]]], frames: dict[str, float] | None = None) -> pd.DataFrame:
    """Final-score rows: arms = {recipe: {task: [one score per seed]}}, ``frames`` = each recipe's budget."""
    rows = [dict(experiment="e", recipe=recipe, suite="S", task=task, seed=seed, step=100,
                 frame=(frames or {}).get(recipe, 400.0), time=1.0, score=v, normalized=v)
            for recipe, tasks in arms.items() for task, values in tasks.items() for seed, v in enumerate(values)]
    return stats.final_scores(pd.DataFrame(rows))


def test_one_seed_per_recipe_gives_no_verdict_and_no_exact_interval():
    # the finding: one run each, every dqn run above every dqn_nstep1 run -> P = 1 with a zero-width CI
    finals = _finals({"dqn": {"CartPole": [1.0], "Acrobot": [0.9]},
                      "dqn_nstep1": {"CartPole": [0.2], "Acrobot": [0.1]}})
    row = stats.comparisons(finals, reps=200).iloc[0]
    assert row.verdict == "not enough runs" and row.verdict not in stats.VERDICTS
    assert row.poi == 1.0 and np.isnan(row.ci_low) and np.isnan(row.ci_high)
    assert "not enough runs for a verdict (n = 1 each; need ≥ 3)" in row.sentence
    assert "better" not in row.sentence and "[1.00, 1.00]" not in row.sentence and "CI n/a" in row.sentence


def test_enough_seeds_and_a_real_difference_give_a_verdict():
    rng = np.random.default_rng(0)
    good = {t: list(0.8 + 0.1 * rng.random(5)) for t in ("t1", "t2")}
    bad = {t: list(0.2 + 0.1 * rng.random(5)) for t in ("t1", "t2")}
    same = {t: list(0.2 + 0.1 * rng.random(5)) for t in ("t1", "t2")}
    table = stats.comparisons(_finals({"bad": bad, "good": good, "same": same}), reps=300).set_index(["x", "y"])
    assert table.loc[("bad", "good"), "verdict"] == "worse"
    assert "bad is worse than good" in table.loc[("bad", "good"), "sentence"]
    assert table.loc[("bad", "same"), "verdict"] == "no difference"
    assert "no difference detected" in table.loc[("bad", "same"), "sentence"]
    # exactly at the minimum (3 runs each) a clear difference is still decided
    three = _finals({"a": {"t": [0.9, 0.95, 1.0]}, "b": {"t": [0.1, 0.15, 0.2]}})
    assert stats.comparisons(three, reps=300).iloc[0].verdict == "better"


def test_two_budgets_are_never_compared():
    finals = _finals({"long": {"t": [0.9, 0.95, 1.0]}, "short": {"t": [0.1, 0.15, 0.2]}},
                     frames={"long": 400_000.0, "short": 100_000.0})
    row = stats.comparisons(finals, reps=100).iloc[0]
    assert row.verdict == "different budgets" and np.isnan(row.poi)
    assert "not compared (different budgets: long ends at 400,000 frames, short at 100,000 on t)" in row.sentence
    # within 2% (a published curve ending at 980k beside runs at 1M) is one budget
    near = _finals({"a": {"t": [0.9, 0.95, 1.0]}, "b": {"t": [0.1, 0.15, 0.2]}}, frames={"a": 1e6, "b": 980e3})
    assert stats.comparisons(near, reps=100).iloc[0].verdict == "better"


def test_two_protocols_are_never_compared():
    finals = _finals({"a": {"t": [0.9, 0.95, 1.0]}, "b": {"t": [0.1, 0.15, 0.2]}})
    cards = {("S", "a", "t"): {"sticky_actions": 0.25, "frame_stack": 4},
             ("S", "b", "t"): {"sticky_actions": 0.0, "frame_stack": 4}}
    row = stats.comparisons(finals, reps=100, cards=cards).iloc[0]
    assert row.verdict == "different protocols" and "sticky_actions 0.25 vs 0.0 on t" in row.sentence
    mixed = {("S", "a", "t"): {"sticky_actions": "mixed: 0.0 | 0.25"}, ("S", "b", "t"): {"sticky_actions": 0.0}}
    row = stats.comparisons(finals, reps=100, cards=mixed).iloc[0]
    assert row.verdict == "different protocols" and "a's runs mix protocols (sticky_actions)" in row.sentence
    same = {("S", "a", "t"): {"sticky_actions": 0.0}, ("S", "b", "t"): {"sticky_actions": 0.0}}
    assert stats.comparisons(finals, reps=100, cards=same).iloc[0].verdict == "better"


def test_a_tasks_own_action_set_is_no_protocol_difference():
    """Cards are per task: CartPole's 2 actions and Acrobot's 3 are the tasks', not a recipe mixing protocols."""
    finals = _finals({"a": {"t1": [0.9, 0.95, 1.0], "t2": [0.9, 0.95, 1.0]},
                      "b": {"t1": [0.1, 0.15, 0.2], "t2": [0.1, 0.15, 0.2]}})
    cards = {("S", label, task): {"action_set": f"discrete ({n} actions)"}
             for label in ("a", "b") for task, n in (("t1", 2), ("t2", 3))}
    assert stats.comparisons(finals, reps=100, cards=cards).iloc[0].verdict == "better"
    cards[("S", "b", "t2")] = {"action_set": "discrete (4 actions)"}
    row = stats.comparisons(finals, reps=100, cards=cards).iloc[0]
    assert row.verdict == "different protocols" and "discrete (3 actions) vs discrete (4 actions) on t2" in row.sentence
