# Every complete cell -> scores.csv (one row per evaluation, normalized) -> stats.csv (with 95% CIs).


localrules:
    scores,
    stats,


rule scores:
    input:
        runs=RUN_JSONS,
        baselines=BASELINE_JSONS,
    output:
        report(SCORES, caption="../report/scores.rst", category="Tables"),
    log:
        f"{ROOT}/logs/scores.log",
    shell:
        "{PYTHON} -m ML.benchmarking.scores gather --experiment {EXP:q} --results {RESULTS:q} "
        "--baselines {BASELINES:q} --out {output:q} {input.runs:q} 2>&1 | tee {log:q}"


rule stats:
    input:
        SCORES,
    output:
        report(STATS_CSV, caption="../report/stats.rst", category="Tables"),
    log:
        f"{ROOT}/logs/stats.log",
    params:
        reps=STATS["reps"],
        seed=STATS["seed"],
        ci=STATS["ci"],
    shell:
        "{PYTHON} -m ML.benchmarking.stats --scores {input:q} --out {output:q} --reps {params.reps} "
        "--seed {params.seed} --ci {params.ci} 2>&1 | tee {log:q}"
