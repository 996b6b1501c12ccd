"""CSV logs that survive a kill (rows appended whole and flushed), and a progress bar with ETA."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ML import stops
from ML.fileio import write_text

LEAD = ("step", "frame", "episode", "time")


def read_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """``(columns, rows)`` of a log; a torn last line (a kill mid-write: no line end) is dropped."""
    text = Path(path).read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


class CSVLog:
    """eval.csv / train.csv: every row is appended whole and flushed at once, so a killed run keeps every
    row up to its last. A row that brings a new column rewrites the file (atomically) with the wider header,
    which happens a few times early in a run. ``keep=(rows, columns)`` (a resume) cuts the file back to what
    the checkpoint saw, dropping rows written after it and any torn tail.
    """

    def __init__(self, path: str | Path, keep: tuple[int, list[str]] | None = None):
        self.path = Path(path)
        self.columns: list[str] = []
        self.count = 0
        self.last: dict[str, Any] | None = None
        if keep is not None and self.path.is_file():
            rows, columns = keep
            self.columns = list(columns)
            # rows written before the checkpoint have no values in columns added after it: drop those
            kept = [{c: row.get(c, "") for c in self.columns} for row in read_rows(self.path)[1][: int(rows)]]
            self.count = len(kept)
            self.last = kept[-1] if kept else None
            self._rewrite(kept)

    def append(self, row: dict[str, Any]) -> None:
        raw, row = row, {k: _format(v) for k, v in row.items()}
        new = [k for k in row if k not in self.columns]
        if new or not self.path.is_file():
            rows = read_rows(self.path)[1] if self.count and self.path.is_file() else []
            self.columns = [c for c in LEAD if c in self.columns or c in row] + \
                [c for c in [*self.columns, *new] if c not in LEAD]
            self._rewrite([*rows, row])
            if rows:
                stops.point("new_column")
        else:
            line = io.StringIO()
            csv.DictWriter(line, fieldnames=self.columns, lineterminator="\n").writerow(row)
            with self.path.open("a") as f:
                f.write(line.getvalue())
        self.count += 1
        self.last = raw  # as given (full precision)

    def keep(self) -> tuple[int, list[str]]:
        """What a checkpoint records: the rows written so far and the header."""
        return self.count, list(self.columns)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, buffer.getvalue())


def _format(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


class Progress:
    """A tqdm bar (rate and ETA) on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, initial: int, enabled: Any = "auto", desc: str = ""):
        self.interactive = sys.stderr.isatty() if enabled == "auto" else bool(enabled)
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                        smoothing=0.1) if self.interactive else None
        self.shown = initial

    @contextmanager
    def evaluation(self, step: int) -> Iterator[Callable[[int, int], None]]:
        """A second bar while an evaluation runs: ``tick(done, total)`` episodes (or 1 of 1 for a dataset),
        with rate and ETA, gone when it ends; silent where the training bar is."""
        bar: tqdm | None = None

        def tick(done: int, total: int) -> None:
            nonlocal bar
            if bar is None and self.interactive:
                bar = tqdm(total=total, desc=f"eval  step {step}", unit="episode", dynamic_ncols=True,
                           leave=False, position=1 if self.bar is not None else 0)
            if bar is not None:
                bar.update(done - bar.n)
                if done == total:
                    bar.refresh()  # the last count is drawn even within tqdm's minimum interval

        try:
            yield tick
        finally:
            if bar is not None:
                bar.close()

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
