"""Everything computed from scores.csv (and cells.csv), in one place shared by the pipeline and ``Plot``.

``tables`` writes, into an experiment folder: ``stats.csv`` (+ ``stats.json``, its provenance: the final
score's definition, bootstrap resamples, seed, CI level), ``profiles.csv`` (performance profiles),
``comparisons.csv`` (P(X > Y) and a verdict for each pair of recipes), ``final_scores.csv`` and
``final_scores.md`` (per recipe per task). ``summary`` writes the one-page ``summary.md``.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ML.benchmarking import references, stats
from ML.benchmarking.scores import write_csv
from ML.fileio import write_json, write_text

FINAL_COLUMNS = ["experiment", "recipe", "suite", "task", "seeds", "score_mean", "score_std", "normalized_mean",
                 "normalized_std", "frames"]


def final_table(finals: pd.DataFrame) -> pd.DataFrame:
    """Per experiment, recipe and task: the final score's mean and standard deviation over seeds."""
    if finals.empty:
        return pd.DataFrame(columns=FINAL_COLUMNS)
    group = finals.groupby(["experiment", "recipe", "suite", "task"], sort=True)
    out = pd.DataFrame({
        "seeds": group.size(),
        "score_mean": group["score"].mean(), "score_std": group["score"].std(ddof=0),
        "normalized_mean": group["normalized"].mean(), "normalized_std": group["normalized"].std(ddof=0),
        "frames": group["frame"].max(),
    }).reset_index()
    return out[FINAL_COLUMNS]


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def final_markdown(table: pd.DataFrame, window: float) -> str:
    """Tasks as rows, recipes as columns: ``raw mean ± sd (normalized)``."""
    text = f"Final score per task: {stats.describe_final(window)}; mean ± sd over seeds (normalized).\n\n"
    if table.empty:
        return text + "No complete runs.\n"
    table = table.assign(label=stats.labelled(table))
    labels = sorted(table["label"].unique())
    rows = []
    for (suite, task), g in table.groupby(["suite", "task"], sort=True):
        by = g.set_index("label")
        row = [suite, task]
        for label in labels:
            if label in by.index:
                r = by.loc[label]
                row.append(f"{_fmt(r.score_mean)} ± {_fmt(r.score_std, 2)} ({_fmt(r.normalized_mean)}, "
                           f"n={int(r.seeds)})")
            else:
                row.append("–")
        rows.append(row)
    return text + markdown_table(["suite", "task", *labels], rows)


def tables(scores: pd.DataFrame, out_dir: str | Path, reps: int = 2000, seed: int = 0, ci: float = 0.95,
           window: float = 0.1, log=print) -> dict[str, Any]:
    """Compute and write every table of an experiment folder; returns the frames by name."""
    out_dir = Path(out_dir)
    finals = stats.final_scores(scores, window)
    table = stats.compute(scores, reps, seed, ci, log=log, window=window)
    table["step"] = table["step"].astype(str)
    profile = stats.profiles(finals, reps, seed, ci)
    pairs = stats.comparisons(finals, reps, seed, ci)
    final = final_table(finals)
    provenance = {
        "final_score": stats.describe_final(window), "final_window": window,
        "bootstrap": "stratified (runs resampled with replacement within each task), percentile intervals",
        "reps": reps, "seed": seed, "ci": ci,
        "metrics": {"iqm": "25% trimmed mean of all runs x tasks", "median": "median of per-task means",
                    "mean": "mean of per-task means", "optimality_gap": "mean of max(0, 1 - score), gamma = 1"},
        "runs": int(finals.shape[0]), "evaluation_rows": int(scores.shape[0]),
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    write_csv(table, out_dir / "stats.csv")
    write_json(out_dir / "stats.json", provenance)
    write_csv(profile, out_dir / "profiles.csv")
    write_csv(pairs, out_dir / "comparisons.csv")
    write_csv(final, out_dir / "final_scores.csv")
    write_text(out_dir / "final_scores.md", final_markdown(final, window))
    log(f"stats: {len(table)} rows, {len(pairs)} comparison(s), {len(final)} final scores "
        f"({reps} resamples, {ci:.0%} CIs; final score = {stats.describe_final(window)}) -> {out_dir}/")
    return {"stats": table, "profiles": profile, "comparisons": pairs, "finals": finals, "final_table": final,
            "provenance": provenance}


def read_tables(out_dir: str | Path) -> dict[str, Any]:
    """The frames ``tables`` wrote (what the figures rule reads)."""
    import json

    out_dir = Path(out_dir)
    return {
        "stats": stats.read_stats(out_dir / "stats.csv"),
        "profiles": pd.read_csv(out_dir / "profiles.csv"),
        "comparisons": pd.read_csv(out_dir / "comparisons.csv"),
        "final_table": pd.read_csv(out_dir / "final_scores.csv"),
        "provenance": json.loads((out_dir / "stats.json").read_text()),
    }


def reference_notes(scores: pd.DataFrame, cells: pd.DataFrame | None) -> list[str]:
    """One line per published reference drawn beside these runs, with its protocol and whether it matches."""
    notes = []
    suites = set(scores["suite"]) if len(scores) else set()
    if "DMC" in suites:
        tasks = sorted(set(scores.loc[scores["suite"] == "DMC", "task"]))
        known = sorted(set(tasks) & set(references.dmc_published()["task"]))
        protocols = _protocols(cells, "DMC")
        match = references.DMC_PROTOCOL_KEY in protocols and len(protocols) == 1
        notes.append(f"DMC: {references.DMC_PROTOCOL} drawn on the learning curves of {len(known)} of "
                     f"{len(tasks)} task(s)" + ("" if match else
                     f"; PROTOCOL DIFFERS (these runs: {', '.join(sorted(protocols)) or 'unknown'}): "
                     "shown for orientation, not compared"))
    if "Atari" in suites:
        games = set(scores.loc[scores["suite"] == "Atari", "task"].map(references.game_key))
        protocols = _protocols(cells, "Atari")
        full = games >= references.atari100k_games()
        match = full and protocols == {"atari100k"}
        why = []
        if not full:
            why.append(f"{len(games & references.atari100k_games())} of the 26 Atari-100k games")
        if protocols != {"atari100k"}:
            why.append(f"protocol {', '.join(sorted(protocols)) or 'unknown'}")
        notes.append(f"Atari: {references.ATARI100K_PROTOCOL} drawn on the interval estimates"
                     + ("" if match else f"; PROTOCOL DIFFERS ({'; '.join(why)}): shown, not compared"))
    return notes


def _protocols(cells: pd.DataFrame | None, suite: str) -> set[str]:
    if cells is None or cells.empty:
        return set()
    rows = cells[(cells["suite"] == suite) & (cells["status"] == "complete")]
    return set(rows["protocol"].fillna("").astype(str)) - {""}


def summary(out_path: str | Path, experiment: str, scores: pd.DataFrame, frames: dict[str, Any],
            cells: pd.DataFrame | None, figures: list[Path]) -> Path:
    """The one-page summary.md: runs counted and missing, headline metrics, verdicts, references, figures."""
    out_path = Path(out_path)
    prov = frames["provenance"]
    table = frames["stats"]
    lines = [f"# Benchmark summary: {experiment}", ""]
    n_runs = scores.groupby(["experiment", "recipe", "suite", "task", "seed"]).ngroups if len(scores) else 0
    lines.append(f"{n_runs} complete run(s) counted. Final score: {prov['final_score']}. "
                 f"Intervals: {prov['ci']:.0%} stratified bootstrap, {prov['reps']} resamples, seed {prov['seed']}.")
    lines.append("")
    if cells is not None and len(cells):
        bad = cells[cells["status"] != "complete"]
        if len(bad):
            lines.append(f"## Not counted: {len(bad)} of {len(cells)} cell(s)")
            lines.append("")
            for r in bad.itertuples(index=False):
                lines.append(f"- {r.recipe}/{r.suite}/{r.task}/{r.seed}: **{r.status}**"
                             + (f" ({r.reason})" if isinstance(r.reason, str) and r.reason else ""))
            lines.append("")
        else:
            lines += [f"All {len(cells)} cell(s) of the grid are complete.", ""]
    final = table[table["step"].astype(str) == stats.FINAL]
    if len(final):
        lines += ["## Final aggregate metrics (normalized)", ""]
        rows = []
        for (exp, recipe, suite), g in final.groupby(["experiment", "recipe", "suite"], sort=True):
            by = g.set_index("metric")
            rows.append([recipe if scores["experiment"].nunique() <= 1 else f"{recipe} ({exp})", suite] + [
                f"{by.loc[m, 'value']:.3f} [{by.loc[m, 'ci_low']:.3f}, {by.loc[m, 'ci_high']:.3f}]"
                if m in by.index else "–" for m in stats.METRICS])
        lines += [markdown_table(["recipe", "suite", "IQM", "median", "mean", "optimality gap"], rows)]
    pairs = frames["comparisons"]
    lines += ["## Verdicts", ""]
    if len(pairs):
        lines += [f"- {s}" for s in pairs["sentence"]]
        lines += ["", "Verdict rule: better when the CI of P(X > Y) lies above 0.5, worse when below, else "
                  "inconclusive. Seeds needed: the CI's half-width shrinks like 1/√n, so n ≈ seeds × "
                  "(half-width / |P − 0.5|)² seeds per task would likely exclude 0.5."]
    else:
        lines.append("No pair of recipes shares a suite: nothing to compare.")
    lines.append("")
    notes = reference_notes(scores, cells)
    if notes:
        lines += ["## Published references", ""] + [f"- {n}" for n in notes] + [""]
    if figures:
        lines += ["## Figures", ""] + [f"- `{p.name}`" for p in figures if p.suffix == ".png"] + [""]
    lines += ["Tables: `stats.csv` (+ `stats.json`), `profiles.csv`, `comparisons.csv`, `final_scores.csv`, "
              "`final_scores.md`.", ""]
    write_text(out_path, "\n".join(lines))
    return out_path
