"""CSV logs that survive a kill (rows appended whole and flushed)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

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
