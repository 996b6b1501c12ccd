# Load and validate the config (one clear line on a bad one), expand the grid into cells.
import os
import shlex
import sys

from ML.benchmarking import grid as _grid
from ML.benchmarking.cells import failures as _failures
from ML.benchmarking.cells import read_status as _read_status
from ML.benchmarking.plots import figure_files, figure_names

try:
    config = _grid.validate(config, workflow.source_path("../schemas/config.schema.yaml"))
    CELLS = _grid.expand(config)
except _grid.ConfigError as _e:
    print(f"config error: {_e}", file=sys.stderr)
    sys.exit(2)  # a user mistake: one line, exit 2

EXP = config["experiment"]
RESULTS = config["results"].rstrip("/")
ROOT = f"{RESULTS}/{EXP}"
BASELINES = f"{RESULTS}/baselines"
THREADS = config["threads"]
STATS = config["stats"]
CELL = {cell.key: cell for cell in CELLS}
SUITES = sorted({cell.env for cell in CELLS})

RUN_DIR = ROOT + "/runs/{recipe}/{suite}/{task}/{seed}"
# the train rule's output: one status file per cell, written whether ML succeeded or not (ML.benchmarking.cells)
STATUS = ROOT + "/cells/{recipe}/{suite}/{task}/{seed}.json"
STATUSES = [STATUS.format(recipe=c.recipe, suite=c.env, task=c.task, seed=c.seed) for c in CELLS]
BASELINE_JSONS = sorted({f"{BASELINES}/Classic/{c.task}.json" for c in CELLS if c.env == "Classic"})
SCORES = f"{ROOT}/scores.csv"
CELLS_CSV = f"{ROOT}/cells.csv"
STATS_CSV = f"{ROOT}/stats.csv"
TABLES = [f"{ROOT}/{name}" for name in ("stats.json", "profiles.csv", "comparisons.csv", "final_scores.csv",
                                        "final_scores.md")]
PLOTS = [f"{ROOT}/plots/{name}" for name in figure_names(SUITES)]
PLOT_FILES = [f"{ROOT}/plots/{name}" for name in figure_files(SUITES)]
SUMMARY = f"{ROOT}/summary.md"
REPORT = f"{ROOT}/report.html"
PYTHON = shlex.quote(sys.executable)
# the ML console script beside this Python (a venv's bin/ need not be on PATH), else ML from PATH
_ML = os.path.join(os.path.dirname(sys.executable), "ML")
ML = shlex.quote(_ML) if os.access(_ML, os.X_OK) else "ML"

# train-job resources per environment kind; pixel suites get a GPU (config.yaml `resources:` overrides)
PIXEL_SUITES = ("Atari", "DMC")
_SMALL = {"runtime": 60, "mem_mb": 2000, "gpu": 0, "slurm_partition": "cpu"}
_PIXEL = {"runtime": 720, "mem_mb": 16000, "gpu": 1, "slurm_partition": "gpu"}
TRAIN_RESOURCES = {
    env: {**(_PIXEL if env in PIXEL_SUITES else _SMALL), **config["resources"].get(env, {})}
    for env in ("Classic", "Classify", "Atari", "DMC")
}


wildcard_constraints:
    recipe="[^/]+",
    suite="[^/]+",
    task="[^/]+",
    seed="[0-9]+",


def cell_of(wildcards):
    key = (wildcards.recipe, wildcards.suite, wildcards.task, wildcards.seed)
    if key not in CELL:
        raise WorkflowError(f"{'/'.join(key)} is not a cell of the grid in config.yaml")
    return CELL[key]


def failed_attempts(wildcards):
    """Failed attempts so far, read from the cell's status file: a failure raises it, so the param differs
    from the recorded one and the next snakemake call reruns that cell (and only that cell)."""
    return _failures(STATUS.format(**wildcards))


def train_resource(name, scale_with_attempt=False):
    def get(wildcards, attempt):
        value = TRAIN_RESOURCES[wildcards.suite][name]
        return value * attempt if scale_with_attempt else value

    return get


def failed_cells():
    """The status files of the grid's cells whose last attempt failed (named at the end of every run)."""
    return [path for path in STATUSES if _read_status(path).get("status") == "failed"]


def finish(failed, strict):
    """Name the failed cells; with `strict: true` in config.yaml, exit non-zero if there are any."""
    if not failed:
        return
    print(f"{len(failed)} cell(s) failed (logs under {ROOT}/logs/train/; the next snakemake call retries "
          f"them): {', '.join(failed)}", file=sys.stderr)
    if strict:
        print("strict: true in config.yaml: exiting with status 1 because cells failed", file=sys.stderr)
        sys.exit(1)
