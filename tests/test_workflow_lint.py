"""The workflow passes ``snakemake --lint`` (the Snakemake catalog's check): parameters through ``params``,
a log and a conda environment per rule, no paths built with ``+``, no long ``run:`` blocks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_snakemake_lint_is_clean(tmp_path: Path):
    proc = subprocess.run([str(BIN / "snakemake"), "--lint", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(REPO / "config.yaml")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    output = proc.stdout + proc.stderr
    findings = re.findall(r"^(Lints for .*|    \* .*)$", output, re.M)
    assert proc.returncode == 0 and not findings, "\n".join(findings) or output[-2000:]


def test_the_conda_environment_installs_this_package_and_its_pins():
    """--sdm conda: conda runs pip beside the env file, so its relative paths must reach the repository root."""
    env_file = REPO / "workflow" / "envs" / "unifiedml.yaml"
    pip = next(d["pip"] for d in yaml.safe_load(env_file.read_text())["dependencies"] if isinstance(d, dict))
    requirements = next(line.split()[1] for line in pip if line.startswith("-r "))
    package = next(line for line in pip if not line.startswith("-")).removesuffix("[pipeline]")
    assert (env_file.parent / requirements).resolve() == REPO / "requirements.txt"
    assert (env_file.parent / package / "pyproject.toml").resolve() == REPO / "pyproject.toml"
