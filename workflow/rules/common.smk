# Load and validate the config (one clear line on a bad one), expand the grid into cells.
import os
import shlex
import sys

from ML.benchmarking import grid as _grid
from ML.benchmarking.plots import figure_names

try:
    config = _grid.validate(config, workflow.source_path("../schemas/config.schema.yaml"))
    CELLS = _grid.expand(config)
except _grid.ConfigError as _e:
    sys.exit(f"config error: {_e}")

EXP = config["experiment"]
RESULTS = config["results"].rstrip("/")
ROOT = f"{RESULTS}/{EXP}"
BASELINES = f"{RESULTS}/baselines"
THREADS = config["threads"]
STATS = config["stats"]
CELL = {cell.key: cell for cell in CELLS}
SUITES = sorted({cell.env for cell in CELLS})

RUN_DIR = ROOT + "/runs/{recipe}/{suite}/{task}/{seed}"
RUN_JSONS = [f"{ROOT}/runs/{c.recipe}/{c.env}/{c.task}/{c.seed}/run.json" for c in CELLS]
BASELINE_JSONS = sorted({f"{BASELINES}/Classic/{c.task}.json" for c in CELLS if c.env == "Classic"})
SCORES = f"{ROOT}/scores.csv"
STATS_CSV = f"{ROOT}/stats.csv"
PLOTS = [f"{ROOT}/plots/{name}" for name in figure_names(SUITES)]
REPORT = f"{ROOT}/report.html"
PYTHON = shlex.quote(sys.executable)
# the ML console script beside this Python (a venv's bin/ need not be on PATH), else ML from PATH
_ML = os.path.join(os.path.dirname(sys.executable), "ML")
ML = shlex.quote(_ML) if os.access(_ML, os.X_OK) else "ML"


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
