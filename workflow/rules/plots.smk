# Figures and summary.md (part of the default target), the `plots` target that redraws them from the existing
# results without training, and the `report` target (snakemake's own HTML report, every figure captioned).


localrules:
    figures,
    plots,
    report,


rule figures:
    input:
        scores=SCORES,
        cells=CELLS_CSV,
        stats=STATS_CSV,
        tables=TABLES,
    output:
        pngs=[report(path, caption=caption(path), category="Figures") for path in PLOTS],
        svgs=[path for path in PLOT_FILES if path.endswith(".svg")],
        summary=report(SUMMARY, caption="../report/summary.rst", category="Summary"),
    log:
        f"{ROOT}/logs/plots.log",
    params:
        python=PYTHON,
        experiment=EXP,
        tables=lambda wildcards, input: os.path.dirname(input.stats),
        out=lambda wildcards, output: os.path.dirname(output.pngs[0]),
        suites=" ".join(shlex.quote(s) for s in SUITES),
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m ML.benchmarking.cli plots --scores {input.scores:q} --tables {params.tables:q} "
        "--cells {input.cells:q} --out {params.out:q} --suites {params.suites} --summary {output.summary:q} "
        "--experiment {params.experiment:q} 2>&1 | tee {log:q}"


# No inputs and no outputs: always runs when asked for, never schedules training. Reads the existing
# scores.csv and tables (or gathers the complete run directories when there is no scores.csv yet).
rule plots:
    log:
        f"{ROOT}/logs/redraw.log",
    params:
        python=PYTHON,
        experiment=EXP,
        results=RESULTS,
        reps=STATS["reps"],
        seed=STATS["seed"],
        ci=STATS["ci"],
        window=STATS["final_window"],
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m ML.plot_cli experiment={params.experiment:q} results={params.results:q} "
        "rescore=false reps={params.reps} seed={params.seed} ci={params.ci} window={params.window} "
        "2>&1 | tee {log:q}"


# snakemake --report from inside the workflow, on the same config (workflow/scripts/report.py); its first page
# is the headline of the tables (verdicts, normalized IQM) and the main figure, not the workflow graph.
rule report:
    input:
        PLOTS,
        STATS_CSV,
        SUMMARY,
        TABLES,
    output:
        REPORT,
    log:
        f"{ROOT}/logs/report.log",
    params:
        snakefile=str(workflow.main_snakefile),
        directory=os.getcwd(),
    conda:
        CONDA_ENV
    script:
        "../scripts/report.py"
