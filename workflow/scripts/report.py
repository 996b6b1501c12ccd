"""The `report` rule: snakemake's HTML report of this workflow, on the same config (dumped to a temporary
file), written by a nested ``snakemake --report`` over the figures, stats and summary.

Its first page is the headline (report/workflow.rst includes ``report_headline.rst``, written beside
summary.md by ``ML.benchmarking.landing``). Given report metadata, snakemake opens the report on that page
instead of the workflow graph, which stays under "Workflow". The metadata are numbers only: snakemake 9
renders string metadata as docutils pseudo-XML. report/landing.css starts that page at the top."""

import json
import os
import subprocess
import sys
import tempfile

import yaml

sm = snakemake  # noqa: F821 (the object Snakemake gives a rule's script)
stylesheet = os.path.join(os.path.dirname(sm.params.snakefile), "report", "landing.css")
provenance = json.loads(open(next(p for p in sm.input if p.endswith("stats.json"))).read())
metadata = {"complete runs": int(provenance["runs"]), "bootstrap resamples": int(provenance["reps"]),
            "runs per task for a verdict (at least)": int(provenance["min_runs"])}
temporary = []
try:
    for data in (dict(sm.config), metadata):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(data, f, sort_keys=False)
        temporary.append(f.name)
    config, landing = temporary
    command = [sys.executable, "-m", "snakemake", "--snakefile", sm.params.snakefile, "--directory",
               sm.params.directory, "--configfile", config, "--nolock", "--report", sm.output[0],
               "--report-metadata", landing, "--report-stylesheet", stylesheet, *sm.input]
    with open(sm.log[0], "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
finally:
    for name in temporary:
        os.unlink(name)
