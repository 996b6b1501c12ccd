# One train job per grid cell: ML task=<recipe> <suite args> seed=<s> experiment=<exp> results=<root> threads=<n>.
# A job killed part-way (preemption, Ctrl-C) continues from its last checkpoint when rerun: ML resumes an
# unfinished run of the same config by itself, and starts fresh otherwise. The job fails unless run.json
# says complete.


rule train:
    output:
        run_json=f"{RUN_DIR}/run.json",
        evals=f"{RUN_DIR}/eval.csv",
    log:
        f"{ROOT}/logs/train/{{recipe}}/{{suite}}/{{task}}/{{seed}}.log",
    params:
        args=lambda wc: cell_of(wc).shell_args(EXP, RESULTS, THREADS),
    threads: THREADS
    resources:
        runtime=120,
    shell:
        "{ML} {params.args} > {log:q} 2>&1 && "
        "{PYTHON} -m ML.benchmarking.scores check {output.run_json:q} >> {log:q} 2>&1"
