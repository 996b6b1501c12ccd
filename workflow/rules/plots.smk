# Figures and summary.md (part of the default target), the `plots` target that redraws them from the existing
# results without training, and the `report` target (snakemake's own HTML report, every figure captioned).
import tempfile

import yaml


localrules:
    figures,
    plots,
    report,


def _caption(path):
    name = os.path.basename(path)
    for prefix in ("curves_time_", "curves_"):
        if name.startswith(prefix):
            return f"../report/{prefix.rstrip('_')}.rst"
    return f"../report/{os.path.splitext(name)[0]}.rst"


rule figures:
    input:
        scores=SCORES,
        cells=CELLS_CSV,
        stats=STATS_CSV,
        tables=TABLES,
    output:
        pngs=[report(path, caption=_caption(path), category="Figures") for path in PLOTS],
        svgs=[path for path in PLOT_FILES if path.endswith(".svg")],
        summary=report(SUMMARY, caption="../report/summary.rst", category="Summary"),
    log:
        f"{ROOT}/logs/plots.log",
    params:
        out=f"{ROOT}/plots",
        suites=" ".join(shlex.quote(s) for s in SUITES),
    shell:
        "{PYTHON} -m ML.benchmarking.cli plots --scores {input.scores:q} --tables {ROOT:q} --cells {input.cells:q} "
        "--out {params.out:q} --suites {params.suites} --summary {output.summary:q} --experiment {EXP:q} "
        "2>&1 | tee {log:q}"


# No inputs and no outputs: always runs when asked for, never schedules training. Reads the existing
# scores.csv and tables (or gathers the complete run directories when there is no scores.csv yet).
rule plots:
    params:
        reps=STATS["reps"],
        seed=STATS["seed"],
        ci=STATS["ci"],
        window=STATS["final_window"],
    shell:
        "{PYTHON} -m ML.plot_cli experiment={EXP:q} results={RESULTS:q} rescore=false "
        "reps={params.reps} seed={params.seed} ci={params.ci} window={params.window}"


# snakemake --report from inside the workflow, on the same config (dumped to a temporary file).
rule report:
    input:
        PLOTS,
        STATS_CSV,
        SUMMARY,
    output:
        REPORT,
    run:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(config, f)
        command = [
            sys.executable, "-m", "snakemake", "--snakefile", str(workflow.main_snakefile),
            "--directory", os.getcwd(), "--configfile", f.name, "--nolock", "--report", str(output[0]),
            *PLOTS, STATS_CSV, SUMMARY,
        ]
        try:
            shell(" ".join(shlex.quote(c) for c in command))
        finally:
            os.unlink(f.name)
