"""Shared fixtures: a clean working directory per test and the real ML command on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working directory (results/ lands here) with no script arguments in sys.argv."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["test"])
    return tmp_path


def run_ml(*args: str, cwd: Path, check: bool = True, timeout: float = 300, **env: str):
    """The real ``ML`` console script, as a user runs it."""
    proc = subprocess.run([str(BIN / "ML"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env})
    if check and proc.returncode != 0:
        raise AssertionError(f"ML {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
