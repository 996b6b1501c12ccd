# Classic control's random-agent score (100 evaluation episodes at step 0), measured once per task and
# shared by every experiment under <results>/baselines/.


rule baseline_classic:
    output:
        f"{BASELINES}/Classic/{{task}}.json",
    log:
        f"{BASELINES}/logs/Classic/{{task}}.log",
    params:
        python=PYTHON,
    threads: 1
    resources:
        runtime=15,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m ML.benchmarking.cli baseline --task {wildcards.task:q} --out {output:q} > {log:q} 2>&1"
