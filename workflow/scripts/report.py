"""The `report` rule: snakemake's HTML report of this workflow, on the same config (dumped to a temporary
file), written by a nested ``snakemake --report`` over the figures, stats and summary."""

import os
import subprocess
import sys
import tempfile

import yaml

sm = snakemake  # noqa: F821 (the object Snakemake gives a rule's script)
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    yaml.safe_dump(dict(sm.config), f)
command = [sys.executable, "-m", "snakemake", "--snakefile", sm.params.snakefile, "--directory", sm.params.directory,
           "--configfile", f.name, "--nolock", "--report", sm.output[0], *sm.input]
try:
    with open(sm.log[0], "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
finally:
    os.unlink(f.name)
