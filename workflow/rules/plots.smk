# Figures (part of the default target), the `plots` target that redraws them from the existing
# scores.csv/stats.csv without training, and the `report` target (snakemake's own HTML report).
import tempfile

import yaml


localrules:
    figures,
    plots,
    report,


rule figures:
    input:
        scores=SCORES,
        stats=STATS_CSV,
    output:
        [
            report(path, caption="../report/plots.rst", category="Figures")
            for path in PLOTS
        ],
    log:
        f"{ROOT}/logs/plots.log",
    params:
        out=f"{ROOT}/plots",
        suites=" ".join(shlex.quote(s) for s in SUITES),
    shell:
        "{PYTHON} -m ML.benchmarking.plots --scores {input.scores:q} --stats {input.stats:q} "
        "--out {params.out:q} --suites {params.suites} 2>&1 | tee {log:q}"


# No inputs and no outputs: always runs when asked for, never schedules training. Reads the existing
# scores.csv/stats.csv (or gathers the complete run directories when there is no scores.csv yet).
rule plots:
    params:
        reps=STATS["reps"],
        seed=STATS["seed"],
        ci=STATS["ci"],
    shell:
        "{PYTHON} -m ML.plot_cli experiment={EXP:q} results={RESULTS:q} rescore=false "
        "reps={params.reps} seed={params.seed} ci={params.ci}"


# snakemake --report from inside the workflow, on the same config (dumped to a temporary file).
rule report:
    input:
        PLOTS,
        STATS_CSV,
    output:
        REPORT,
    run:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(config, f)
        command = [
            sys.executable, "-m", "snakemake", "--snakefile", str(workflow.main_snakefile),
            "--directory", os.getcwd(), "--configfile", f.name, "--nolock", "--report", str(output[0]),
            *PLOTS, STATS_CSV,
        ]
        try:
            shell(" ".join(shlex.quote(c) for c in command))
        finally:
            os.unlink(f.name)
