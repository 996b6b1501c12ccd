# Every cell's status -> scores.csv (the complete runs' evaluations, normalized) + cells.csv (status of every
# cell: complete / failed / incomplete) -> stats.csv (+ stats.json provenance), profiles.csv, comparisons.csv,
# final_scores.csv/.md. Failed cells are named, never block the rest; incomplete run directories never count.


localrules:
    scores,
    stats,


rule scores:
    input:
        cells=STATUSES,
        baselines=BASELINE_JSONS,
    output:
        scores=report(SCORES, caption="../report/scores.rst", category="Tables"),
        cells=CELLS_CSV,
    log:
        f"{ROOT}/logs/scores.log",
    params:
        python=PYTHON,
        experiment=EXP,
        # <results>/<experiment>/scores.csv: the results root and its baselines/, from the output's path
        results=lambda wildcards, output: os.path.dirname(os.path.dirname(output.scores)),
        baselines=lambda wildcards, output: os.path.join(os.path.dirname(os.path.dirname(output.scores)),
                                                         "baselines"),
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m ML.benchmarking.cli gather --experiment {params.experiment:q} "
        "--results {params.results:q} --baselines {params.baselines:q} --out {output.scores:q} "
        "--cells-out {output.cells:q} {input.cells:q} 2>&1 | tee {log:q}"


rule stats:
    input:
        scores=SCORES,
        cells=CELLS_CSV,
    output:
        stats=report(STATS_CSV, caption="../report/stats.rst", category="Tables"),
        comparisons=report(f"{ROOT}/comparisons.csv", caption="../report/comparisons.rst", category="Tables"),
        final=report(f"{ROOT}/final_scores.csv", caption="../report/final_scores.rst", category="Tables"),
        other=[path for path in TABLES if not path.endswith(("comparisons.csv", "final_scores.csv"))],
    log:
        f"{ROOT}/logs/stats.log",
    params:
        python=PYTHON,
        reps=STATS["reps"],
        seed=STATS["seed"],
        ci=STATS["ci"],
        window=STATS["final_window"],
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m ML.benchmarking.cli stats --scores {input.scores:q} --cells {input.cells:q} "
        "--out {output.stats:q} --reps {params.reps} --seed {params.seed} --ci {params.ci} "
        "--window {params.window} 2>&1 | tee {log:q}"
