"""Everything computed from scores.csv (and cells.csv), in one place shared by the pipeline and ``Plot``.

``tables`` writes, into an experiment folder: ``stats.csv`` (+ ``stats.json``, its provenance: the final
score's definition, bootstrap resamples, seed, CI level), ``profiles.csv`` (performance profiles),
``comparisons.csv`` (P(X > Y) and a verdict for each pair of recipes), ``final_scores.csv`` and
``final_scores.md`` (per recipe per task). ``summary`` writes the one-page ``summary.md``.
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ML.benchmarking import references, stats
from ML.benchmarking.scores import write_csv
from ML.fileio import write_json, write_text

FINAL_COLUMNS = ["experiment", "recipe", "suite", "task", "seeds", "score_mean", "score_std", "normalized_mean",
                 "normalized_std", "frames", "at", "published", "published_seeds", "note"]


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
    }).reset_index().assign(at="final", published=float("nan"), published_seeds=0, note="")
    return out[FINAL_COLUMNS]


def with_checkpoints(final: pd.DataFrame, checkpoints: pd.DataFrame) -> pd.DataFrame:
    """final_scores.csv: the final rows (``at`` = final), then the rows at the published budgets."""
    if checkpoints.empty:
        return final
    extra = checkpoints.rename(columns={"frame": "frames"}).assign(normalized_std=float("nan"))
    return pd.concat([final, extra[FINAL_COLUMNS]], ignore_index=True)


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
           window: float = 0.1, log=print, cells: pd.DataFrame | None = None) -> dict[str, Any]:
    """Compute and write every table of an experiment folder; returns the frames by name. ``cells``
    (cells.csv) gives the runs' protocol cards: stats.json ``protocols`` and the published budgets."""
    out_dir = Path(out_dir)
    finals = stats.final_scores(scores, window)
    table = stats.compute(scores, reps, seed, ci, log=log, window=window)
    table["step"] = table["step"].astype(str)
    profile = stats.profiles(finals, reps, seed, ci)
    pairs = stats.comparisons(finals, reps, seed, ci)
    checkpoints = checkpoint_scores(scores, cells)
    final = with_checkpoints(final_table(finals), checkpoints)
    provenance = {
        "final_score": stats.describe_final(window), "final_window": window,
        "bootstrap": "stratified (runs resampled with replacement within each task), percentile intervals",
        "reps": reps, "seed": seed, "ci": ci,
        "metrics": {"iqm": "25% trimmed mean of all runs x tasks", "median": "median of per-task means",
                    "mean": "mean of per-task means", "optimality_gap": "mean of max(0, 1 - score), gamma = 1"},
        "runs": int((finals["recipe"] != references.DRQV2_LABEL).sum()), "evaluation_rows": int(scores.shape[0]),
        "protocols": suite_protocols(cells),
        "references": reference_status(scores, cells),
        "published_entry": {references.DRQV2_LABEL: f"DrQ-v2's own per-seed evaluations ({references.DRQV2_SOURCE}), "
                            "at its evaluation frames up to the last frame of the DMC runs whose protocol matches"}
        if (scores["recipe"] == references.DRQV2_LABEL).any() else {},
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    write_csv(table, out_dir / "stats.csv")
    write_json(out_dir / "stats.json", provenance)
    write_csv(profile, out_dir / "profiles.csv")
    write_csv(pairs, out_dir / "comparisons.csv")
    write_csv(final, out_dir / "final_scores.csv")
    write_text(out_dir / "final_scores.md", final_markdown(final[final["at"] == "final"], window)
                + ("\n" + checkpoint_markdown(checkpoints, scores) if len(checkpoints) else ""))
    log(f"stats: {len(table)} rows, {len(pairs)} comparison(s), {len(final)} final scores "
        f"({reps} resamples, {ci:.0%} CIs; final score = {stats.describe_final(window)}) -> {out_dir}/")
    return {"stats": table, "profiles": profile, "comparisons": pairs, "finals": finals, "final_table": final,
            "provenance": provenance, "checkpoints": checkpoints}


def read_tables(out_dir: str | Path) -> dict[str, Any]:
    """The frames ``tables`` wrote (what the figures rule reads)."""
    out_dir = Path(out_dir)
    final = pd.read_csv(out_dir / "final_scores.csv")
    at = final["at"] if "at" in final else pd.Series("final", index=final.index)
    return {
        "checkpoints": final[at != "final"].rename(columns={"frames": "frame"}),
        "stats": stats.read_stats(out_dir / "stats.csv"),
        "profiles": pd.read_csv(out_dir / "profiles.csv"),
        "comparisons": pd.read_csv(out_dir / "comparisons.csv"),
        "final_table": pd.read_csv(out_dir / "final_scores.csv"),
        "provenance": json.loads((out_dir / "stats.json").read_text()),
    }


def cards(cells: pd.DataFrame | None) -> pd.DataFrame:
    """The complete cells with their run.json protocol card parsed: ``experiment, recipe, suite, task, seed,
    card`` (an empty dict when the run has none)."""
    columns = ["experiment", "recipe", "suite", "task", "seed", "card"]
    if cells is None or cells.empty or "protocol" not in cells:
        return pd.DataFrame(columns=columns)
    rows = cells[cells["status"] == "complete"].copy()
    rows["card"] = [json.loads(c) if isinstance(c, str) and c.startswith("{") else {} for c in rows["protocol"]]
    return rows[columns]


def suite_protocols(cells: pd.DataFrame | None) -> dict[str, dict[str, dict[str, Any]]]:
    """Per suite and recipe, the protocol card its runs share; a field on which they differ reads
    ``mixed: a | b``. (stats.json ``protocols``; the summary's protocol table.)"""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    table = cards(cells)
    for (suite, recipe), g in table.groupby(["suite", "recipe"], sort=True):
        merged: dict[str, Any] = {}
        for key in dict.fromkeys(k for card in g["card"] for k in card):
            values = list(dict.fromkeys(json.dumps(card.get(key)) for card in g["card"]))
            merged[key] = json.loads(values[0]) if len(values) == 1 else "mixed: " + " | ".join(values)
        out.setdefault(str(suite), {})[str(recipe)] = merged
    return out


def reference_status(scores: pd.DataFrame, cells: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Per suite with a published reference: its name, the recipes whose runs match its protocol (drawn and
    compared beside it) and, for the others, why they are left out."""
    out: dict[str, dict[str, Any]] = {}
    table = cards(cells)
    for suite, ref in references.REFERENCES.items():
        rows = scores[(scores["suite"] == suite) & (scores["recipe"] != references.DRQV2_LABEL)] \
            if len(scores) else scores
        if rows.empty:
            continue
        matched, left_out = [], {}
        for recipe, g in rows.groupby("recipe", sort=True):
            runs = table[(table["suite"] == suite) & (table["recipe"] == recipe)]
            why = sorted({m for card in runs["card"] for m in ref.mismatches(card)}) if len(runs) else \
                ["no protocol card (cells.csv lacks these runs)"]
            if suite == "Atari":
                games = set(g["task"].map(references.game_key))
                covered = games & references.atari100k_games()
                if covered != references.atari100k_games():
                    why.append(f"{len(covered)} of the 26 Atari-100k games (the aggregates need all 26)")
            if why:
                left_out[str(recipe)] = "; ".join(why)
            else:
                matched.append(str(recipe))
        out[suite] = {"reference": ref.name, "matched": matched, "left_out": left_out}
    return out


def reference_notes(scores: pd.DataFrame, cells: pd.DataFrame | None) -> list[str]:
    """One line per published reference: what it is drawn beside, and which recipes are left out and why."""
    notes = []
    for suite, status in reference_status(scores, cells).items():
        where = "the learning curves" if suite == "DMC" else "the interval estimates"
        line = f"{suite}: {status['reference']}"
        line += (f" — drawn on {where} beside {', '.join(status['matched'])}" if status["matched"]
                 else " — not drawn: no recipe's runs match its protocol")
        if status["left_out"]:
            line += "; left out (protocol differs): " + "; ".join(f"{r}: {why}"
                                                                 for r, why in status["left_out"].items())
        notes.append(line)
    drawn = sorted(set(scores["recipe"])) if len(scores) else []
    for suite, ref, mark in (("MuJoCo", references.MUJOCO_REFERENCE, "Tianshou "),
                             ("DMC", references.SAC_DMC_REFERENCE, references.SAC_DMC_LABEL)):
        entries = [r for r in drawn if str(r).startswith(mark)]
        if entries:
            notes.append(f"{suite}: {ref.name} — published seeds drawn as their own entries ({', '.join(entries)}) "
                         "beside the sac/ppo runs matching its protocol, never pooled with them")
    if len(scores) and "videopinball" in set(scores.loc[scores["suite"] == "Atari", "task"].map(references.game_key)):
        notes.append(f"Atari: {references.VIDEO_PINBALL_NOTE}")
    return notes


CHECKPOINT_COLUMNS = ["experiment", "recipe", "suite", "task", "at", "frame", "seeds", "score_mean", "score_std",
                      "normalized_mean", "published", "published_seeds", "note"]


def _at_frame(rows: pd.DataFrame, frame: float) -> pd.DataFrame:
    """Per seed, the evaluation at ``frame`` (the last one at or before it, within 2%; none when not reached)."""
    rows = rows[(rows["frame"] <= frame) & (rows["frame"] >= 0.98 * frame)]
    return rows.sort_values("frame").groupby("seed", sort=True).tail(1)


def checkpoint_scores(scores: pd.DataFrame, cells: pd.DataFrame | None) -> pd.DataFrame:
    """Each suite with a published reference at the reference's budgets, beside the published value: DMC at
    100k / 500k / 1M frames (1M (980k) where DrQ-v2's curve ends there), Atari-100k at 100k steps (400k
    frames). ``note`` says when runs did not reach a budget or their protocol differs."""
    records = []
    status = reference_status(scores, cells)
    published = references.dmc_published()
    for (experiment, recipe, suite, task), rows in scores.groupby(["experiment", "recipe", "suite", "task"],
                                                                   sort=True):
        if suite not in references.REFERENCES:
            continue
        ref = references.REFERENCES[suite]
        differs = status.get(suite, {}).get("left_out", {}).get(recipe)
        if suite == "DMC":
            pub = published[published["task"] == task]
            points = [(int(r.frames), int(r.frame_measured), float(r.mean_return), int(r.seeds))
                      for r in pub.itertuples(index=False)] or \
                [(f, f, float("nan"), 0) for f in ref.checkpoints]
        else:
            points = [(f, f, float("nan"), 0) for f in ref.checkpoints]
        for frames, measured, value, seeds in points:
            at = _at_frame(rows, measured)
            note = "" if len(at) else f"not reached: runs end at {int(rows['frame'].max())} frames"
            if differs and recipe != references.DRQV2_LABEL:
                note = "; ".join(filter(None, [note, f"protocol differs ({differs})"]))
            label = references.checkpoint_label(frames, measured) + (" frames" if suite == "DMC" else
                                                                      f" frames ({frames // 4 // 1000}k steps)")
            records.append((experiment, recipe, suite, task, label, measured, len(at),
                            float(at["score"].mean()) if len(at) else float("nan"),
                            float(at["score"].std(ddof=0)) if len(at) else float("nan"),
                            float(at["normalized"].mean()) if len(at) else float("nan"), value, seeds, note))
    return pd.DataFrame.from_records(records, columns=CHECKPOINT_COLUMNS)


def checkpoint_markdown(table: pd.DataFrame, scores: pd.DataFrame) -> str:
    """The published budgets: per suite, task and budget, each recipe's mean ± sd beside the published value;
    for Atari-100k the human-normalized mean and median over the games beside the published aggregates."""
    if table.empty:
        return ""
    lines = ["Scores at the published references' budgets (mean ± sd over seeds; – : not reached).", ""]
    table = table.assign(label=stats.labelled(table))
    labels = sorted(table["label"].unique())
    rows = []
    for (suite, task, at), g in table.groupby(["suite", "task", "at"], sort=False):
        by = g.set_index("label")
        pub = g["published"].dropna()
        row = [suite, task, at, f"{pub.iloc[0]:.0f} (n={int(g['published_seeds'].iloc[0])})" if len(pub) else "–"]
        for label in labels:
            r = by.loc[label] if label in by.index else None
            row.append("–" if r is None or not r.seeds else f"{_fmt(r.score_mean)} ± {_fmt(r.score_std, 2)} "
                       f"(n={int(r.seeds)})" + (" †" if "differs" in str(r.note) else ""))
        rows.append(row)
    lines.append(markdown_table(["suite", "task", "budget", "published", *labels], rows))
    atari = table[(table["suite"] == "Atari") & (table["seeds"] > 0)]
    if len(atari):
        lines += ["", "Atari-100k at 100k steps, human-normalized over the games run (mean of per-game means; "
                  "published: rliable's aggregates, " + ", ".join(f"{r.algorithm} {r.hns_mean:.3f}/{r.hns_median:.3f}"
                  for r in references.atari100k_published().itertuples(index=False)) + " mean/median):", ""]
        for recipe, g in atari.groupby("label", sort=True):
            lines.append(f"- {recipe}: mean {g['normalized_mean'].mean():.3f}, median "
                         f"{g['normalized_mean'].median():.3f} over {len(g)} game(s)"
                         + (" † protocol differs" if g["note"].str.contains("differs").any() else ""))
    if table["note"].str.contains("differs").any():
        lines += ["", "† the runs' protocol differs from the reference's (see the summary): not comparable."]
    return "\n".join(lines) + "\n"


def summary(out_path: str | Path, experiment: str, scores: pd.DataFrame, frames: dict[str, Any],
            cells: pd.DataFrame | None, figures: list[Path]) -> Path:
    """The one-page summary.md: runs counted and missing, headline metrics, verdicts, references, figures."""
    out_path = Path(out_path)
    prov = frames["provenance"]
    table = frames["stats"]
    lines = [f"# Benchmark summary: {experiment}", ""]
    own = scores[scores["recipe"] != references.DRQV2_LABEL] if len(scores) else scores
    n_runs = own.groupby(["experiment", "recipe", "suite", "task", "seed"]).ngroups if len(own) else 0
    lines.append(f"{n_runs} complete run(s) counted. Final score: {prov['final_score']}. "
                 f"Intervals: {prov['ci']:.0%} stratified bootstrap, {prov['reps']} resamples, seed {prov['seed']}.")
    lines.append("")
    published = scores[scores["recipe"] == references.DRQV2_LABEL] if len(scores) else scores
    if len(published):
        lines += [f"**{references.DRQV2_LABEL}**: DrQ-v2's own evaluations ({references.DRQV2_SOURCE}), "
                  f"{published.groupby(['task', 'seed']).ngroups} seed curves on {published['task'].nunique()} "
                  "task(s), taken at its evaluation frames (every 20k) up to the last frame of the DMC runs whose "
                  "protocol matches DrQ-v2's, and compared with them like any recipe.", ""]
    protocols = suite_protocols(cells)
    if protocols:
        lines += ["## Protocols", "", "Each suite's protocol card (run.json `protocol`; frames are env frames):", ""]
        for suite, by_recipe in protocols.items():
            recipes = list(by_recipe)
            keys = list(dict.fromkeys(k for card in by_recipe.values() for k in card))
            rows = [[key, *(_card_value(by_recipe[r].get(key)) for r in recipes)] for key in keys]
            lines += [f"**{suite}**", "", markdown_table(["setting", *recipes], rows)]
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
    checkpoints = frames.get("checkpoints")
    if checkpoints is not None and len(checkpoints):
        lines += ["## At the published budgets", "", checkpoint_markdown(checkpoints, scores)]
    if figures:
        lines += ["## Figures", ""] + [f"- `{p.name}`" for p in figures if p.suffix == ".png"] + [""]
    lines += ["Tables: `stats.csv` (+ `stats.json`), `profiles.csv`, `comparisons.csv`, `final_scores.csv`, "
              "`final_scores.md`.", ""]
    write_text(out_path, "\n".join(lines))
    return out_path


def _card_value(value: Any) -> str:
    return "–" if value is None else str(value)
