"""The headline every result page leads with (summary.md, the HTML report's first page): the verdicts, the
normalized IQM with its CI per recipe and suite, and each run among the published runs.

``rst`` renders it, with the main figure embedded as a data URI, into ``report_headline.rst`` (written beside
summary.md). The report's ``workflow.rst`` includes that file, and the report rule gives snakemake metadata
so that the report opens on this page rather than on the workflow graph (which stays under "Workflow").
"""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ML.benchmarking import stats
from ML.benchmarking.published import is_published
from ML.benchmarking.together import partners

MAIN_FIGURE = "intervals.png"
HEADLINE = "report_headline.rst"


VERDICT_RULE = (f"A verdict (better / worse / no difference) needs at least {stats.MIN_RUNS} runs of each recipe "
                "on every task compared (Agarwal et al. 2021, 'Deep RL at the Edge of the Statistical Precipice', "
                "make stratified-bootstrap intervals for the few-run regime of 3 to 10 runs per task; with fewer "
                "a task has next to nothing to resample), the same budget (final frames within "
                f"{stats.BUDGET_TOLERANCE:.0%}) and the same protocol card. Then: better when the 95% CI of "
                "P(X > Y) lies above 0.5, worse when below, else no difference detected, with about how many "
                "seeds per task would likely decide it (the CI's half-width shrinks like 1/sqrt(n)). Below the "
                "runs needed, intervals read n/a, never an exact [x, x].")


def interval(value: float, low: float, high: float, runs: int | None = None) -> str:
    """``0.412 [0.301, 0.520]``, or ``0.412 (CI n/a: n = 1 per task; need ≥ 3)`` when too few runs."""
    if isinstance(low, float) and math.isnan(low):
        why = f"n = {runs} per task; need ≥ {stats.MIN_RUNS}" if runs is not None else "too few runs"
        return f"{value:.3f} (CI n/a: {why})"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def runs_per_task(final: pd.DataFrame) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(experiment, recipe, suite) → (the fewest runs on one of its tasks, its tasks); suite ``all``: over
    every suite. From final_scores.csv's final rows (``seeds`` per task)."""
    rows = final[final["at"] == "final"] if "at" in final else final
    out = {(e, r, s): (int(g["seeds"].min()), len(g)) for (e, r, s), g in rows.groupby(["experiment", "recipe",
                                                                                          "suite"])}
    out.update({(e, r, "all"): (int(g["seeds"].min()), len(g)) for (e, r), g in rows.groupby(["experiment",
                                                                                              "recipe"])})
    return out


def headline(frames: dict[str, Any]) -> dict[str, Any]:
    """What the summary and the report's first page lead with: ``verdicts`` (one sentence per pair),
    ``iqm`` (rows: recipe, suite, normalized IQM with its CI, runs per task, tasks) and ``placements``
    (each task's runs among the published runs of the agent they reproduce)."""
    table, final = frames["stats"], frames["final_table"]
    several = table["experiment"].nunique() > 1 if len(table) else False
    groups = runs_per_task(final) if len(final) else {}
    iqm = []
    rows = table[(table["step"].astype(str) == stats.FINAL) & (table["metric"] == "iqm")] if len(table) else table
    rows = rows.assign(_published=rows["recipe"].map(is_published)) if len(rows) else rows
    order = ["suite", "_published", "recipe"] if len(rows) else []
    for r in rows.sort_values(order, key=lambda c: c.map(str)).itertuples(index=False):  # published entries last
        runs, tasks = groups.get((r.experiment, r.recipe, r.suite), (None, None))
        iqm.append([f"{r.recipe} ({r.experiment})" if several else str(r.recipe), str(r.suite),
                    interval(r.value, r.ci_low, r.ci_high, runs), "–" if runs is None else str(runs),
                    "–" if tasks is None else str(tasks)])
    placed = final[(final["at"] == "final") & final["placement"].fillna("").astype(str).ne("")] \
        if "placement" in final and len(final) else final.iloc[0:0]
    shared = frames.get("together")
    return {"verdicts": list(frames["comparisons"]["sentence"]), "iqm": iqm,
            "placements": [f"{r.recipe}: {r.placement}" for r in placed.itertuples(index=False)],
            "together": together_rows(shared) if shared is not None else []}


TOGETHER_HEADER = ["task", "recipe", "trained with", "together: normalized IQM (95% CI)",
                   "alone: normalized IQM (95% CI)", "P(together > alone)", "verdict"]


def together_rows(table: pd.DataFrame) -> list[list[str]]:
    """together.csv as rows of ``TOGETHER_HEADER`` (``ML.benchmarking.together``): per task, both arms with
    their intervals, P(together > alone) and the verdict (helped / hurt / no difference / cannot be told)."""
    rows = []
    for r in table.itertuples(index=False):
        alone = "–" if int(r.n_alone) == 0 else interval(r.alone_iqm, r.alone_low, r.alone_high, int(r.n_alone))
        poi = "–" if math.isnan(r.poi) else (f"{r.poi:.2f}" + (" (CI n/a)" if math.isnan(r.ci_low)
                                                                  else f" [{r.ci_low:.2f}, {r.ci_high:.2f}]"))
        verdict = str(r.verdict) if r.verdict != "cannot be told" else f"cannot be told ({r.why})"
        rows.append([str(r.task), str(r.recipe), partners(r.together, r.task),
                     interval(r.together_iqm, r.together_low, r.together_high, int(r.n_together)), alone, poi,
                     verdict])
    return rows


IQM_HEADER = ["recipe", "suite", "normalized IQM (95% CI)", "runs per task", "tasks"]


def escape(text: str) -> str:
    """Plain text as reStructuredText: its markup characters taken literally."""
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", str(text))


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out += [f"   * - {escape(row[0])}"] + [f"     - {escape(cell)}" for cell in row[1:]]
    return "\n".join(out)


def rst(top: dict[str, Any], figure: str | Path | None = None) -> str:
    """The headline (``headline``) as reStructuredText: verdicts, the IQM table, the main figure (embedded,
    its base64 split in lines: docutils caps a line's length), the placements and the verdict rule."""
    def section(title: str, body: str) -> list[str]:
        return [title, "-" * len(title), "", body, ""]
    out = section("Verdicts", "\n".join(f"- {escape(v)}" for v in top["verdicts"])
                  or "No pair of recipes shares a suite: nothing to compare.")
    if top.get("together"):
        out += section("Together vs alone", _table(TOGETHER_HEADER, top["together"]))
    if top["iqm"]:
        out += section("Headline: normalized IQM", _table(IQM_HEADER, top["iqm"]))
    if figure is not None and Path(figure).is_file():
        data = base64.encodebytes(Path(figure).read_bytes()).decode()
        lines = "".join(f"   {line}\n" for line in data.splitlines())
        out += section("Final scores", f".. image:: data:image/png;base64,\n{lines}   :alt: {Path(figure).name}\n"
                       "   :width: 100%")
    if top["placements"]:
        out += section("Among the published runs", "\n".join(f"- {escape(p)}" for p in top["placements"]))
    out += section("Verdict rule", escape(VERDICT_RULE))
    return "\n".join(out)
