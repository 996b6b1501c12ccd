"""Normalization per suite, against the shipped reference tables, and the missing-reference path."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ML.benchmarking import references
from ML.benchmarking.normalize import ReferenceWarning, bounds, normalize


@pytest.mark.parametrize("name", ["pong", "Pong", "ALE/Pong-v5", "PongNoFrameskip-v4"])
def test_atari_human_normalized_from_the_table(name):
    assert references.atari_human_random(name) == (-20.7, 14.6)
    assert normalize(14.6, "Atari", name) == pytest.approx(1.0)
    assert normalize(-20.7, "Atari", name) == pytest.approx(0.0)
    assert normalize(-3.05, "Atari", name) == pytest.approx(0.5)


def test_atari_names_with_underscores_match_either_spelling():
    # the table writes ms_pacman, the README's game list mspacman
    assert references.atari_human_random("mspacman") == references.atari_human_random("ms_pacman") == (307.3, 6951.6)


def test_dmc_is_score_over_1000():
    np.testing.assert_allclose(normalize([0, 500, 1000], "DMC", "walker_walk"), [0.0, 0.5, 1.0])


def test_generate_score_is_already_normalized():
    np.testing.assert_allclose(normalize([0.0, 0.25, 1.0], "Generate", "Digits"), [0.0, 0.25, 1.0])


def test_classic_uses_measured_random_score_and_reward_threshold(tmp_path):
    env = {"reward_threshold": 475.0, "action_repeat": 1}
    assert normalize(247.5, "Classic", "CartPole-v1", env, random_score=20.0) == pytest.approx(0.5)
    # the same through the cached baseline file the pipeline writes
    path = references.baseline_path(tmp_path, "CartPole-v1")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"task": "CartPole-v1", "random": 20.0, "episodes": 100}))
    assert normalize(475.0, "Classic", "CartPole-v1", env, baselines=tmp_path) == pytest.approx(1.0)
    # negative-reward tasks: Acrobot's random is about -500, its target -100
    assert normalize(-300.0, "Classic", "Acrobot-v1", {"reward_threshold": -100.0}, random_score=-500.0) == 0.5


def test_classify_is_chance_normalized():
    env = {"num_classes": 10}
    np.testing.assert_allclose(normalize([0.1, 0.55, 1.0], "Classify", "Digits", env), [0.0, 0.5, 1.0])
    assert bounds("Classify", "Binary", {"num_classes": 2}) == (0.5, 1.0)


@pytest.mark.parametrize(
    ("suite", "task", "env", "named"),
    [
        ("Atari", "notagame", {}, "notagame"),
        ("Procgen", "coinrun", {}, "Procgen"),
        ("Classic", "CartPole-v1", {"reward_threshold": 475.0}, "random baseline"),  # never measured
        ("Classic", "Pendulum-v1", {"reward_threshold": None}, "reward_threshold"),
        ("Classify", "Digits", {}, "num_classes"),
    ],
)
def test_missing_reference_is_nan_with_a_warning_naming_it(tmp_path, suite, task, env, named):
    with pytest.warns(ReferenceWarning, match=named) as caught:
        out = normalize([1.0, 2.0], suite, task, env, baselines=tmp_path)
    assert np.isnan(out).all() and out.shape == (2,)
    assert len(caught) == 1 and "NaN" in str(caught[0].message)
    with pytest.warns(ReferenceWarning):
        assert math.isnan(normalize(3.0, suite, task, env, baselines=tmp_path))
