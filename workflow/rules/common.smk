# Load and validate the config (one clear line on a bad one), expand the grid into cells.
import os
import shlex
import sys

from ML.benchmarking import grid as _grid
from ML.benchmarking import slurm as _slurm
from ML.benchmarking.cells import failures as _failures
from ML.benchmarking.cells import read_status as _read_status
from ML.benchmarking.plots import figure_files, figure_names
from ML import layout as _layout
from snakemake_interface_executor_plugins.settings import DeploymentMethod

try:
    config = _grid.validate(config)  # the schema ships inside the package (ML/benchmarking/config.schema.yaml)
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

# the results tree's layout is ML.layout's; the wildcards fill its levels
RUN_DIR = str(_layout.run_dir(RESULTS, EXP, "{recipe}", "{suite}", "{task}", "{seed}"))
# the train rule's output: one status file per cell, written whether ML succeeded or not (ML.benchmarking.cells)
STATUS = str(_layout.status_path(RESULTS, EXP, "{recipe}", "{suite}", "{task}", "{seed}"))
STATUSES = [STATUS.format(recipe=c.recipe, suite=c.env, task=c.task, seed=c.seed) for c in CELLS]
BASELINE_JSONS = sorted({f"{BASELINES}/Classic/{t}.json" for c in CELLS if c.env == "Classic" for t in c.tasks})
SCORES = f"{ROOT}/scores.csv"
CELLS_CSV = f"{ROOT}/cells.csv"
STATS_CSV = f"{ROOT}/stats.csv"
TABLES = [f"{ROOT}/{name}" for name in ("stats.json", "profiles.csv", "comparisons.csv", "together.csv",
                                        "final_scores.csv", "final_scores.md")]
PLOTS = [f"{ROOT}/plots/{name}" for name in figure_names(SUITES)]
PLOT_FILES = [f"{ROOT}/plots/{name}" for name in figure_files(SUITES)]
SUMMARY = f"{ROOT}/summary.md"
HEADLINE = f"{ROOT}/report_headline.rst"  # written beside SUMMARY (ML.benchmarking.landing)
PARTIAL = f"{ROOT}/partial"  # what an interrupted or failed call aggregates of the complete cells (onerror)
REPORT = f"{ROOT}/report.html"
# Every rule runs in workflow/envs/unifiedml.yaml under --software-deployment-method conda, with that env's
# python and ML; otherwise with this snakemake's Python and the ML console script beside it (a venv's bin/
# need not be on PATH), else ML from PATH. Rules take them through `params:` (python=PYTHON, ml=ML).
CONDA_ENV = "../envs/unifiedml.yaml"  # relative to rules/
HOST_PYTHON = shlex.quote(sys.executable)  # onerror runs here, outside any rule's environment
_ML = os.path.join(os.path.dirname(sys.executable), "ML")
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
    PYTHON, ML = "python", "ML"
else:
    PYTHON, ML = HOST_PYTHON, shlex.quote(_ML) if os.access(_ML, os.X_OK) else "ML"

# train-job resources per environment kind; pixel suites get a GPU (config.yaml `resources:` overrides)
PIXEL_SUITES = ("Atari", "DMC")
_SMALL = {"runtime": 60, "mem_mb": 2000, "gpu": 0, "slurm_partition": "cpu"}
_PIXEL = {"runtime": 720, "mem_mb": 16000, "gpu": 1, "slurm_partition": "gpu"}
_STATES = {**_SMALL, "runtime": 1440, "mem_mb": 4000}  # MuJoCo: 1M-3M steps of state-based RL on a CPU
TRAIN_RESOURCES = {
    env: {**(_PIXEL if env in PIXEL_SUITES else _STATES if env == "MuJoCo" else _SMALL),
          **config["resources"].get(env, {})}
    for env in ("Classic", "Classify", "Atari", "DMC", "MuJoCo")
}
SMALL_SUITES = ("Classic", "Classify")  # rule train_small, grouped by the SLURM profile into group "small"

# SLURM (workflow/profiles/slurm): the small jobs of one submission (group-components) share it layer by
# layer: snakemake sums the CPUs and memory of the jobs that run side by side, up to --cores, and adds up the
# runtimes of the layers. Unless --cores is given, it is the CPUs of the smallest node of the small jobs'
# partition (sinfo), so a group job always fits one node. slurm_preflight refuses, before any submission,
# a job no node of its partition can hold: SLURM would queue it forever (Reason=PartitionConfig).
# sinfo only for cluster execution (--jobs): where the controller is down it takes seconds to say so.
SLURM_NODES = _slurm.partitions() if workflow.global_resources["_nodes"].value is not None else {}
_SMALL_NODE = SLURM_NODES.get(TRAIN_RESOURCES["Classic"]["slurm_partition"])
if _SMALL_NODE is not None and workflow.global_resources["_cores"].value is None:
    workflow.global_resources["_cores"] = _SMALL_NODE.cpus  # without --cores: a group job is one node wide


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


def caption(path):
    """The report caption (workflow/report/*.rst) of a figure."""
    name = os.path.basename(path)
    for prefix in ("curves_time_", "curves_"):
        if name.startswith(prefix):
            return f"../report/{prefix.rstrip('_')}.rst"
    return f"../report/{os.path.splitext(name)[0]}.rst"


def train_resource(name, scale_with_attempt=False):
    def get(wildcards, attempt):
        value = TRAIN_RESOURCES[wildcards.suite][name]
        return value * attempt if scale_with_attempt else value

    return get


def failed_cells():
    """The status files of the grid's cells whose last attempt failed (named at the end of every run)."""
    return [path for path in STATUSES if _read_status(path).get("status") == "failed"]


def interrupted_summary():
    """What an unfinished call leaves: cells complete of the grid, and how to finish it."""
    states = [_read_status(path).get("status") for path in STATUSES]
    done, failed = states.count("complete"), states.count("failed")
    return (f"Not finished: {done} of {len(STATUSES)} cells complete, {failed} failed, "
            f"{len(STATUSES) - done - failed} stopped or not started. The same command resumes stopped cells "
            f"from their checkpoints and finishes the grid. Partial results of the complete cells: "
            f"{PARTIAL}/summary.md")


def finish(failed, strict):
    """Name the failed cells; with `strict: true` in config.yaml, exit non-zero if there are any."""
    if not failed:
        return
    print(f"{len(failed)} cell(s) failed (logs under {ROOT}/logs/train/; the next snakemake call retries "
          f"them): {', '.join(failed)}", file=sys.stderr)
    if strict:
        print("strict: true in config.yaml: exiting with status 1 because cells failed", file=sys.stderr)
        sys.exit(1)

def mem_per_cpu(wildcards, attempt, threads):
    """sbatch --mem-per-cpu for a pixel cell, so jobs share a node by CPUs and memory alike; 0 (the plugin then
    asks --mem) for the grouped small cells, whose per-CPU figure snakemake would sum across the group."""
    if wildcards.suite in SMALL_SUITES:
        return 0
    return -(-TRAIN_RESOURCES[wildcards.suite]["mem_mb"] * attempt // threads)


def slurm_preflight():
    """On the SLURM executor, stop before any submission when a train job (or a group of small ones) asks
    for more than every node of its partition has: SLURM would queue it forever (Reason=PartitionConfig)."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.cli_prefix != "slurm" or not SLURM_NODES:
        return
    width = workflow.global_resources["_cores"].value
    for suite in SUITES:
        need = TRAIN_RESOURCES[suite]
        problem = _slurm.misfit(f"a {suite} train job", need["slurm_partition"], THREADS, need["mem_mb"],
                                need["gpu"], SLURM_NODES)
        if problem is None and suite in SMALL_SUITES and width:  # a group job: up to `width` CPUs of small jobs
            side_by_side = max(width // THREADS, 1)
            problem = _slurm.misfit(f"a group of small jobs (--cores {width}: {side_by_side} side by side)",
                                    need["slurm_partition"], side_by_side * THREADS, side_by_side * need["mem_mb"],
                                    0, SLURM_NODES)
        if problem:
            sys.exit(f"slurm: {problem}")


onstart:
    slurm_preflight()
