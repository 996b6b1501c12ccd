"""``ML --help``, ``ML --help task=NAME``, ``ML --version`` and a bare ``ML``: what each answers."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from ML import cli
from ML.hyperparams import recipes
from tests.conftest import REPO, run_ml


def test_help_lists_recipes_suites_tasks_settings_and_the_manual(capsys: pytest.CaptureFixture):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for path in recipes.BUILTIN.glob("*.yaml"):
        if not path.stem.startswith("_"):
            assert re.search(rf"^  {re.escape(path.stem)} ", out, re.M), path.stem
    for path in (recipes.BUILTIN / "suites").glob("*.yaml"):
        assert re.search(rf"^  {path.stem} ", out, re.M), path.stem
    for task in ("Env=Classic env.task=", "Env=Atari env.game=", "Env=DMC env.task=", "Dataset="):
        assert task in out
    # every main setting with its one-line explanation from _defaults.yaml
    assert re.search(r"^  train_steps +agent updates \(classification\) or environment steps", out, re.M)
    assert re.search(r"^  threads +torch CPU threads \(null: chosen", out, re.M)
    assert "examples:" in out and "ML -m task=dqn seed=0,1,2" in out
    manual = re.search(r"^the manual: (\S+)", out, re.M)[1]
    assert (REPO / manual).is_file()


def test_help_of_a_recipe_shows_its_settings_defaults_and_types(capsys: pytest.CaptureFixture):
    assert cli.main(["--help", "task=dqn", "env.task=Acrobot-v1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ML task=dqn: DQN")
    assert re.search(r"^agent\.n_step +3 +int$", out, re.M)
    assert re.search(r"^lr +0\.0005 +a number > 0$", out, re.M)  # the recipe's by_task value for Acrobot-v1
    assert re.search(r"^train_steps +50000 +an integer ≥ 0$", out, re.M)
    assert re.search(r"^agent\.eval_eps +0\.0 +float$", out, re.M)  # the agent's own default, not in the recipe


def test_help_of_an_unknown_recipe_is_one_line(capsys: pytest.CaptureFixture):
    assert cli.main(["--help", "task=nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ML: error: unknown recipe 'nosuch'") and err.count("\n") == 1


def test_version_is_the_package_version(workdir: Path):
    proc = run_ml("--version", cwd=workdir)
    assert proc.stdout.strip() == f"ML (unifiedml) {importlib.metadata.version('unifiedml')}"


def test_no_arguments_says_what_to_do_next(workdir: Path):
    proc = run_ml(cwd=workdir, check=False)
    assert proc.returncode == 2 and "ML task=classify" in proc.stderr and "ML --help" in proc.stderr
    assert "Traceback" not in proc.stderr and list(workdir.iterdir()) == []
