"""Redraw docs/report.png (the README's picture) from a `make run`'s figures:
``.venv/bin/python docs/report_png.py [results/default]``."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402


def main(results: Path) -> None:
    plots = results / "plots"
    curves, iqm, poi = (mpimg.imread(plots / f"{name}.png") for name in ("curves_Classic", "aggregate_iqm", "poi"))
    fig = plt.figure(figsize=(13, 7.6), dpi=100)
    grid = fig.add_gridspec(2, 2, height_ratios=[curves.shape[0], poi.shape[0]],
                            width_ratios=[iqm.shape[1], poi.shape[1]])
    for image, cell in ((curves, grid[0, :]), (iqm, grid[1, 0]), (poi, grid[1, 1])):
        ax = fig.add_subplot(cell)
        ax.imshow(image)
        ax.axis("off")
    fig.suptitle("make run → results/default/plots/ (shown in report.html): learning curves, aggregate IQM with "
                 "95% CIs, probability of improvement", fontsize=11)
    fig.tight_layout()
    fig.savefig(Path(__file__).with_name("report.png"), dpi=100)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/default"))
