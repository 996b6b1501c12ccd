"""CSV logs that are always whole files, and a progress bar with ETA when a person is watching."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ML.fileio import write_text

LEAD = ("step", "frame", "episode", "time")


class CSVLog:
    """Rows kept in memory and rewritten atomically on ``flush`` (a reader never sees half a file).

    Logs hold one row per evaluation or per ``log_per_steps`` steps, so rewriting them is cheap.
    """

    def __init__(self, path: str | Path, rows: list[dict[str, Any]] | None = None):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = list(rows or [])

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def columns(self) -> list[str]:
        seen = dict.fromkeys(c for c in LEAD if any(c in r for r in self.rows))
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def flush(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _format(v) for k, v in row.items()} for row in self.rows)
        write_text(self.path, buffer.getvalue())


def _format(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


class Progress:
    """A tqdm bar (rate and ETA) on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, initial: int, enabled: Any = "auto", desc: str = ""):
        interactive = sys.stderr.isatty() if enabled == "auto" else bool(enabled)
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                        smoothing=0.1) if interactive else None
        self.shown = initial

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.shown)
            self.shown = step

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
