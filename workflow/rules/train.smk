# One train job per grid cell: ML task=<recipe> <suite args> seed=<s> experiment=<exp> results=<root> threads=<n>.
# The declared output is the cell's status file (results/<exp>/cells/<recipe>/<suite>/<task>/<seed>.json),
# written whether ML succeeds or fails, so one failed cell never blocks the scores, statistics and figures of
# the others (they count complete run directories only and name the failed cells). A failed cell is rerun on
# the next snakemake call (its `failures` param changed); a complete one is not. A cell stopped by ^C or
# SIGTERM writes no status file (so it is not done) and exits 130/143; the same command runs it again, and ML
# resumes an unfinished run of the same config from its checkpoint: the run directory is no output, never
# deleted here (docs/interrupts.md).
# `train` runs the pixel suites (Atari, DMC: a GPU each, one submission per cell); `train_small`, the same rule
# for the cheap suites (Classic, Classify), only so the SLURM profile can group those into fewer submissions.
# Resources (common.smk): runtime, memory (growing with each retry), GPUs, partition per suite from config.yaml.


rule train:
    output:
        status=STATUS,
    log:
        f"{ROOT}/logs/train/{{recipe}}/{{suite}}/{{task}}/{{seed}}.log",
    wildcard_constraints:
        suite="Atari|DMC",
    params:
        args=lambda wc: cell_of(wc).shell_args(EXP, RESULTS, THREADS),
        run_dir=RUN_DIR,
        failures=failed_attempts,
        python=PYTHON,
        ml=ML,
    threads: THREADS
    resources:
        runtime=train_resource("runtime"),
        mem_mb=train_resource("mem_mb", scale_with_attempt=True),
        mem_mb_per_cpu=mem_per_cpu,
        gpu=train_resource("gpu"),
        slurm_partition=train_resource("slurm_partition"),
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m ML.benchmarking.cli train --status {output.status:q} --run-dir {params.run_dir:q} "
        "--log {log:q} --failures {params.failures} -- {params.ml} {params.args}"


use rule train as train_small with:
    wildcard_constraints:
        suite="Classic|Classify",
