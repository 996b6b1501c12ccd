"""The built wheel works on its own: installed into a fresh virtual environment and run from outside the
checkout, ``ML`` trains and the grid validates config.yaml against the schema the wheel ships."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*command: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{command} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path):
    # build from a copy of the sources, so the checkout gets no build/ or egg-info
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", tmp_path / "dist", source, cwd=tmp_path, env=env)
    wheel = next((tmp_path / "dist").glob("unifiedml-*.whl"))

    # a fresh venv that sees this interpreter's packages (torch, gymnasium...) behind its own, so nothing downloads
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path, env=env)
    shared = sysconfig.get_paths()["purelib"]
    Path(site.stdout.strip(), "shared.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel,
         cwd=tmp_path, env=env)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = _run(python, "-c", "import ML; print(ML.__file__)", cwd=outside, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"ML imported from {where}, not the installed wheel"

    _run(venv / "bin" / "ML", "task=classify", "train_steps=20", "evaluate_per_steps=0", "progress=false",
         "results=results", cwd=outside, env=env)
    runs = list((outside / "results").rglob("run.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text())["status"] == "complete"

    shutil.copy(REPO / "config.yaml", outside / "config.yaml")
    check = ("from ML.benchmarking import grid\n"
             "config = grid.load_config('config.yaml')\n"
             "print(len(grid.expand(config)))\n"
             "try:\n"
             "    grid.validate({**config, 'seeds': 'many'})\n"
             "except grid.ConfigError as e:\n"
             "    print(e)\n")
    out = _run(python, "-c", check, cwd=outside, env=env).stdout.splitlines()
    assert int(out[0]) > 0
    assert "seeds" in out[1] and "config.yaml" in out[1]
