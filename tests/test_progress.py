"""Progress wherever a user waits, through the one implementation (ML.progress): loading a replay.h5 (frames
loaded of the total), the pipeline reading run directories (runs read of the total), bootstrapping its
statistics (groups and pairs of the total) and drawing its figures (figures of the total), as a bar with
``progress=true``, plain lines where there is no terminal (``auto``, as in snakemake's logs), nothing with
``progress=false``; on real files these tests write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ML
from ML import plot_cli, progress
from ML.benchmarking import cli, plots, scores
from ML.replay import Replay
from tests.test_report import write_run

FRAMES = 3 * 41  # three episodes of 40 steps: 41 frames each


def write_replay(path: Path) -> None:
    replay = Replay(path, 1000, (4,), np.float32, (), np.int64)
    for _ in range(3):
        replay.start(np.zeros(4, np.float32))
        for t in range(40):
            replay.add(t % 2, 1.0, np.full(4, t, np.float32), t == 39, False)
    replay.close()


def load(path: Path, how: object) -> Replay:
    replay = Replay(path, 1000, (4,), np.float32, (), np.int64, load=True, progress=how)
    assert len(replay) > 0 and replay.frames == FRAMES  # loaded either way
    return replay


def test_loading_a_replay_shows_frames_loaded_of_the_total(tmp_path: Path, capsys, monkeypatch):
    path = tmp_path / "replay.h5"
    write_replay(path)
    capsys.readouterr()

    load(path, True).close()
    bar = capsys.readouterr().err
    assert f"replay: loading {path}" in bar and f"{FRAMES}/{FRAMES}" in bar and "frames/s" in bar

    load(path, False).close()
    assert capsys.readouterr().err == ""

    load(path, "auto").close()  # no terminal here: plain lines, none for a load this short
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    load(path, "auto").close()
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[-1].startswith(f"replay: loading {path}: {FRAMES}/{FRAMES} frames (100%), ")
    assert "ETA" in lines[-1] and "\r" not in "".join(lines)  # a log's lines, not a bar's redraws

    progress.set_progress(False)  # what the run's progress=false sets (ML.run.train)
    try:
        load(path, None).close()
    finally:
        progress.set_progress("auto")
    assert capsys.readouterr().err == ""


def test_ml_passes_progress_to_the_replay_it_loads(workdir: Path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "_setting", "auto")  # restored after: each run sets it from its config
    base = {"task": "dqn", "train_steps": 60, "evaluate_per_steps": 60, "evaluate_episodes": 1, "log_per_steps": 20,
            "agent.learn_start": 20, "batch_size": 8, "threads": 1}
    ML.launch(**base, progress=False)
    capsys.readouterr()
    ML.launch(**base, offline=True, overwrite=True, progress=True)
    shown = capsys.readouterr().err
    assert "replay: loading" in shown and "frames/s" in shown
    ML.launch(**base, offline=True, overwrite=True, progress=False)
    quiet = capsys.readouterr()
    assert "replay: loading" not in quiet.err + quiet.out and "frames/s" not in quiet.err


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    for seed in range(4):
        write_run(results, "P", "dqn", "Classic", "CartPole-v1", seed, 400.0 + seed, {})
    return results


def test_the_pipeline_shows_runs_read_of_the_total(runs: Path, capsys):
    out = runs / "P" / "scores.csv"
    gather = ["gather", "--experiment", "P", "--results", str(runs), "--out", str(out)]
    assert cli.main([*gather, "--progress", "true"]) == 0
    bar = capsys.readouterr().err
    assert "scores: reading runs" in bar and "4/4" in bar and "runs/s" in bar

    assert cli.main([*gather, "--progress", "false"]) == 0
    assert "scores: reading runs" not in capsys.readouterr().err
    assert out.is_file()

    plot = ["experiment=P", f"results={runs}", "reps=50", "baselines=false"]
    plot_cli.run(plot_cli.parse([*plot, "progress=true"]))
    shown = capsys.readouterr().err  # Plot passes progress= on: reading, bootstrapping, drawing
    assert "scores: reading runs" in shown and "stats: intervals and curves" in shown
    assert "plots: drawing figures" in shown
    plot_cli.run(plot_cli.parse([*plot, "progress=false"]))
    quiet = capsys.readouterr().err
    assert not any(count in quiet for count in ("scores: reading", "stats: ", "plots: drawing", "/s]"))


def test_a_bad_progress_value_is_one_line():
    with pytest.raises(plot_cli.UserError, match="progress must be auto, true or false, not 'sometimes'"):
        plot_cli.parse(["progress=sometimes"])


TABLES = ("stats.csv", "profiles.csv", "comparisons.csv", "together.csv", "final_scores.csv", "final_scores.md")


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    """A real scores.csv: 3 recipes × 2 tasks × 3 seeds, 4 evaluations each (3 groups, 3 pairs)."""
    rng = np.random.default_rng(0)
    rows = [("G", f"r{r}", "DMC", f"task{t}", s, e * 1000, e * 2000, e * 2.0, 1000 * v, v)
            for r in range(3) for t in range(2) for s in range(3)
            for e, v in enumerate(np.linspace(0, (r + 1) / 3, 4) + rng.normal(0, 0.05, 4))]
    path = tmp_path / "scores.csv"
    pd.DataFrame(rows, columns=scores.COLUMNS).to_csv(path, index=False)
    return path


def test_the_statistics_show_groups_and_pairs_bootstrapped_and_write_the_same_tables(grid: Path, capsys,
                                                                                     monkeypatch):
    def stats(how: str) -> tuple[Path, str]:
        out = grid.parent / how / "stats.csv"
        out.parent.mkdir()
        assert cli.main(["stats", "--scores", str(grid), "--out", str(out), "--reps", "20", "--progress", how]) == 0
        return out.parent, capsys.readouterr().err

    shown, bar = stats("true")
    assert "stats: intervals and curves" in bar and "3/3" in bar and "groups/s" in bar
    assert "stats: performance profiles" in bar
    assert "stats: P(X > Y)" in bar and "pairs/s" in bar
    quiet, nothing = stats("false")
    assert nothing == ""
    for name in TABLES:  # progress changes what is shown, never what is written
        assert (shown / name).read_bytes() == (quiet / name).read_bytes(), name

    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)  # no terminal here: auto writes a log's plain lines
    _, lines = stats("auto")
    assert any(line.startswith("stats: P(X > Y): 3/3 pairs (100%), ") and "ETA" in line
               for line in lines.splitlines())
    assert "\r" not in lines


def test_the_figures_show_figures_drawn_of_the_total(grid: Path, capsys):
    tables = grid.parent / "tables"
    tables.mkdir()
    assert cli.main(["stats", "--scores", str(grid), "--out", str(tables / "stats.csv"), "--reps", "20",
                     "--progress", "false"]) == 0
    figures = len(plots.figure_names([]))  # the aggregate figures alone (no suite's curves): a shorter test
    draw = ["plots", "--scores", str(grid), "--tables", str(tables), "--out", str(tables / "plots"), "--suites"]
    capsys.readouterr()
    assert cli.main([*draw, "--progress", "true"]) == 0
    bar = capsys.readouterr().err
    assert "plots: drawing figures" in bar and f"{figures}/{figures}" in bar and "figures/s" in bar
    assert cli.main([*draw, "--progress", "false"]) == 0
    assert capsys.readouterr().err == ""
    assert len(list((tables / "plots").glob("*.png"))) == figures
