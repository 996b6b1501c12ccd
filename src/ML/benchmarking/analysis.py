"""Everything computed from scores.csv (and cells.csv), in one place shared by the pipeline and ``Plot``.

``tables`` writes, into an experiment folder: ``stats.csv`` (+ ``stats.json``, its provenance: the final
score's definition, bootstrap resamples, seed, CI level), ``profiles.csv`` (performance profiles),
``comparisons.csv`` (P(X > Y) and a verdict for each pair of recipes), ``together.csv`` (tasks trained
together vs alone, ``ML.benchmarking.together``), ``final_scores.csv`` and
``final_scores.md`` (per recipe per task, with each run's percentile among the published runs of the agent
it reproduces). ``summary`` writes the one-page ``summary.md``: results first (verdicts, headline IQM,
placement among published runs), then protocols and provenance; and beside it ``report_headline.rst``, the
same headline for the HTML report's first page (``ML.benchmarking.landing``).
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ML.benchmarking import landing, references, stats, together
from ML.benchmarking import published as published_runs
from ML.benchmarking.landing import IQM_HEADER, VERDICT_RULE, interval, runs_per_task
from ML.benchmarking.scores import write_csv
from ML.fileio import write_json, write_text

FINAL_COLUMNS = ["experiment", "recipe", "suite", "task", "seeds", "score_mean", "score_std", "normalized_mean",
                 "normalized_std", "frames", "at", "published", "published_seeds", "note", "published_agent",
                 "percentile", "percentiles", "placement"]
KEYS = ["experiment", "recipe", "suite", "task"]


def _placement(g: pd.DataFrame) -> str:
    """One task's runs among the published runs: ``RoadRunner 11,360: 58th percentile of 100 published
    DrQ(eps) runs``, or for several runs their percentiles in seed order."""
    if len(g) == 1:
        return str(g["sentence"].iloc[0])
    first = g.iloc[0]
    ranks = [published_runs.ordinal(round(v)) for v in g["percentile"]]
    return (f"{first['game']}, {len(g)} runs: {', '.join(ranks[:-1])} and {ranks[-1]} percentiles of "
            f"{first['published_runs']} published {first['agent']} runs (mean {g['percentile'].mean():.0f})")


def final_table(finals: pd.DataFrame, placements: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per experiment, recipe and task: the final score's mean and standard deviation over seeds, and where a
    run reproduces a published agent (``placements``, see ``published.placements``) its runs' percentiles
    among that agent's published runs (``percentile``: their mean, 100 × P(a run beats a published one))."""
    if finals.empty:
        return pd.DataFrame(columns=FINAL_COLUMNS)
    group = finals.groupby(KEYS, sort=True)
    out = pd.DataFrame({
        "seeds": group.size(),
        "score_mean": group["score"].mean(), "score_std": group["score"].std(ddof=0),
        "normalized_mean": group["normalized"].mean(), "normalized_std": group["normalized"].std(ddof=0),
        "frames": group["frame"].max(),
    }).reset_index().assign(at="final", published=float("nan"), published_seeds=0, note="", published_agent="",
                            percentile=float("nan"), percentiles="", placement="")
    if placements is not None and len(placements):
        placed = placements.sort_values([*KEYS, "seed"]).groupby(KEYS, sort=True)
        summary = pd.DataFrame({
            "published_agent": placed["agent"].first(), "published_seeds": placed["published_runs"].first(),
            "percentile": placed["percentile"].mean(),
            "percentiles": placed["percentile"].agg(lambda v: "; ".join(f"{x:.0f}" for x in v)),
            "placement": placed.apply(_placement, include_groups=False)})
        out = out.set_index(KEYS)
        out.update(summary)
        out = out.reset_index()
    return out[FINAL_COLUMNS]


def with_checkpoints(final: pd.DataFrame, checkpoints: pd.DataFrame) -> pd.DataFrame:
    """final_scores.csv: the final rows (``at`` = final), then the rows at the published budgets."""
    if checkpoints.empty:
        return final
    extra = checkpoints.rename(columns={"frame": "frames"}).assign(
        normalized_std=float("nan"), published_agent="", percentile=float("nan"), percentiles="", placement="")
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


def placement_markdown(placements: pd.DataFrame) -> str:
    """Each run among the published runs of the agent it reproduces, one line per run."""
    if placements.empty:
        return ""
    lines = ["Each run among the published runs of the agent it reproduces (same game, final scores at 100k "
             "steps; percentile = the share of published runs it beats, ties counted half):", ""]
    lines += [f"- {r.recipe} seed {r.seed}: {r.sentence}"
              for r in placements.sort_values(["recipe", "task", "seed"]).itertuples(index=False)]
    return "\n".join(lines) + "\n"


def tables(scores: pd.DataFrame, out_dir: str | Path, reps: int = 2000, seed: int = 0, ci: float = 0.95,
           window: float = 0.1, log=print, cells: pd.DataFrame | None = None, progress: Any = "auto") -> dict[str, Any]:
    """Compute and write every table of an experiment folder; returns the frames by name. ``cells``
    (cells.csv) gives the runs' protocol cards: stats.json ``protocols`` and the published budgets.
    ``progress``: each bootstrapping step's count with rate and ETA (``ML.progress.mode``); the tables are the
    same either way."""
    out_dir = Path(out_dir)
    finals = stats.final_scores(scores, window)
    table = stats.compute(scores, reps, seed, ci, log=log, window=window, progress=progress)
    table["step"] = table["step"].astype(str)
    profile = stats.profiles(finals, reps, seed, ci, progress=progress)
    alone = finals[~finals["recipe"].map(together.is_label)] if len(finals) else finals  # together: own table
    pairs = stats.comparisons(alone, reps, seed, ci, cards=label_cards(cells, finals), progress=progress)
    shared = together.comparisons(finals, run_task_cards(cells), reps, seed, ci, progress=progress)
    checkpoints = checkpoint_scores(scores, cells)
    placed = published_runs.placements(finals, run_cards(cells))
    final = with_checkpoints(final_table(finals, placed), checkpoints)
    provenance = {
        "final_score": stats.describe_final(window), "final_window": window,
        "bootstrap": "stratified (runs resampled with replacement within each task), percentile intervals",
        "reps": reps, "seed": seed, "ci": ci,
        "metrics": {"iqm": "25% trimmed mean of all runs x tasks", "median": "median of per-task means",
                    "mean": "mean of per-task means", "optimality_gap": "mean of max(0, 1 - score), gamma = 1"},
        "verdict_rule": VERDICT_RULE, "min_runs": stats.MIN_RUNS, "budget_tolerance": stats.BUDGET_TOLERANCE,
        "runs": together.run_count(finals[~finals["recipe"].map(published_runs.is_published)]) if len(finals) else 0,
        "evaluation_rows": int(scores.shape[0]),
        "protocols": suite_protocols(cells),
        "references": reference_status(scores, cells),
        "published_entry": published_entries(scores),
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    write_csv(table, out_dir / "stats.csv")
    write_json(out_dir / "stats.json", provenance)
    write_csv(profile, out_dir / "profiles.csv")
    write_csv(pairs, out_dir / "comparisons.csv")
    write_csv(shared, out_dir / "together.csv")
    write_csv(final, out_dir / "final_scores.csv")
    write_text(out_dir / "final_scores.md", final_markdown(final[final["at"] == "final"], window)
                + ("\n" + placement_markdown(placed) if len(placed) else "")
                + ("\n" + checkpoint_markdown(checkpoints, scores) if len(checkpoints) else ""))
    log(f"stats: {len(table)} rows, {len(pairs)} comparison(s), {len(final)} final scores "
        f"({reps} resamples, {ci:.0%} CIs; final score = {stats.describe_final(window)}) -> {out_dir}/")
    return {"stats": table, "profiles": profile, "comparisons": pairs, "finals": finals, "final_table": final,
            "provenance": provenance, "checkpoints": checkpoints, "placements": placed, "together": shared}


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
        "together": pd.read_csv(out_dir / "together.csv") if (out_dir / "together.csv").is_file()
        else pd.DataFrame(columns=together.COLUMNS),
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


def _merged(group: pd.Series) -> dict[str, Any]:
    """The protocol card a group of runs shares; a field on which they differ reads ``mixed: a | b``."""
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for card in group for k in card):
        values = list(dict.fromkeys(json.dumps(card.get(key)) for card in group))
        merged[key] = json.loads(values[0]) if len(values) == 1 else "mixed: " + " | ".join(values)
    return merged


def suite_protocols(cells: pd.DataFrame | None) -> dict[str, dict[str, dict[str, Any]]]:
    """Per suite and recipe, the protocol card its runs share (``_merged``). (stats.json ``protocols``; the
    summary's protocol table.)"""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (suite, recipe), g in cards(cells).groupby(["suite", "recipe"], sort=True):
        out.setdefault(str(suite), {})[str(recipe)] = _merged(g["card"])
    return out


def label_cards(cells: pd.DataFrame | None, finals: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(suite, comparison label, task) → the protocol card its runs of that task share, for the runs that have
    one (the comparisons check that two recipes share it on every task they compare)."""
    table = cards(cells)
    table = table[[bool(card) for card in table["card"]]]
    if table.empty or finals.empty:
        return {}
    table = table.assign(label=stats.labelled(table, finals["experiment"].nunique() > 1))
    return {(str(suite), str(label), str(task)): _merged(g["card"])
            for (suite, label, task), g in table.groupby(["suite", "label", "task"])}


def run_task_cards(cells: pd.DataFrame | None) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """(experiment, label, suite, run task) → the protocol card those runs share (a together run's task is
    ``A+B``; each of its tasks' own cards, from cells.csv ``task_protocols``, under the task's name): what
    ``together.comparisons`` checks per task."""
    table = cards(cells)
    if table.empty or cells is None:
        return {}
    complete = cells[cells["status"] == "complete"] if "task_protocols" in cells else cells.iloc[:0]
    per_task = pd.DataFrame.from_records(
        [{"experiment": r.experiment, "recipe": r.recipe, "suite": r.suite, "task": task, "card": card}
         for r in complete.itertuples(index=False) if str(r.task_protocols).startswith("{")
         for task, card in json.loads(r.task_protocols).items()], columns=list(table.columns.drop("seed")))
    table = pd.concat([table[[bool(card) for card in table["card"]]], per_task])
    return {(str(e), str(r), str(s), str(t)): _merged(g["card"])
            for (e, r, s, t), g in table.groupby(["experiment", "recipe", "suite", "task"])}


def run_cards(cells: pd.DataFrame | None):
    """A finals row → its run's protocol card (None when cells.csv lacks the run)."""
    table = cards(cells)
    by_run = {(r.experiment, r.recipe, r.suite, r.task, int(r.seed)): r.card for r in table.itertuples(index=False)}
    return lambda row: by_run.get((row.experiment, row.recipe, row.suite, row.task, int(row.seed)))


def reference_status(scores: pd.DataFrame, cells: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Per suite with a published reference: its name, the recipes whose runs match its protocol (drawn and
    compared beside it) and, for the others, why they are left out."""
    out: dict[str, dict[str, Any]] = {}
    table = cards(cells)
    for suite, ref in references.REFERENCES.items():
        rows = scores[(scores["suite"] == suite) & ~scores["recipe"].map(published_runs.is_published)] \
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
            if differs and not published_runs.is_published(recipe):
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


def published_entries(scores: pd.DataFrame) -> dict[str, str]:
    """stats.json ``published_entry``: each published comparison entry present and where its runs come from."""
    present = set(scores["recipe"]) if len(scores) else set()
    out = {}
    if references.DRQV2_LABEL in present:
        out[references.DRQV2_LABEL] = (f"DrQ-v2's own per-seed evaluations ({references.DRQV2_SOURCE}), at its "
                                       "evaluation frames up to the last frame of the DMC runs whose protocol matches")
    for label in sorted(r for r in present if published_runs.is_published(r) and r != references.DRQV2_LABEL):
        out[label] = ("every published run's final score at 100k steps on the games the matching runs played "
                      "(rliable's Atari-100k data, Apache-2.0; reference/atari100k_runs.csv)")
    return out


def summary(out_path: str | Path, experiment: str, scores: pd.DataFrame, frames: dict[str, Any],
            cells: pd.DataFrame | None, figures: list[Path]) -> Path:
    """The one-page summary.md, results first: verdicts, tasks trained together vs alone, the headline IQM
    table and each run among the published runs; then the other metrics, cells not counted, references,
    budgets, protocols, figures."""
    out_path = Path(out_path)
    prov = frames["provenance"]
    table = frames["stats"]
    top = landing.headline(frames)
    lines = [f"# Benchmark summary: {experiment}", ""]
    own = scores[~scores["recipe"].map(published_runs.is_published)] if len(scores) else scores
    n_runs = together.run_count(own)
    lines += [f"{n_runs} complete run(s) counted. Final score: {prov['final_score']}. "
              f"Intervals: {prov['ci']:.0%} stratified bootstrap, {prov['reps']} resamples, seed {prov['seed']}.", ""]
    lines += ["## Verdicts", ""]
    if top["verdicts"]:
        lines += [f"- {s}" for s in top["verdicts"]] + ["", f"Verdict rule: {VERDICT_RULE}"]
    else:
        lines.append("No pair of recipes shares a suite: nothing to compare.")
    lines.append("")
    if top["together"]:
        lines += ["## Together vs alone", "", f"Each task trained together with others against the same recipe "
                  f"trained on it alone: {together.RULE}", "", markdown_table(landing.TOGETHER_HEADER, top["together"])]
        lines += [f"- {s}" for s in frames["together"]["sentence"]] + [""]
    if top["iqm"]:
        lines += ["## Headline: normalized IQM", "", markdown_table(IQM_HEADER, top["iqm"])]
    if top["placements"]:
        lines += ["## Among the published runs", "",
                  "Each run's final score among the published runs of the agent its recipe reproduces (same game; "
                  "percentile = the share of published runs it beats, ties counted half):", ""]
        lines += [f"- {p}" for p in top["placements"]] + [""]
    published_rows = scores[scores["recipe"].map(published_runs.is_published)] if len(scores) else scores
    for label, source in published_entries(scores).items():
        rows = published_rows[published_rows["recipe"] == label]
        lines += [f"**{label}**: {source}; {rows.groupby(['task', 'seed']).ngroups} runs on "
                  f"{rows['task'].nunique()} task(s), compared with the runs like any recipe.", ""]
    final = table[table["step"].astype(str) == stats.FINAL]
    if len(final):
        groups = runs_per_task(frames["final_table"]) if len(frames["final_table"]) else {}
        lines += ["## Final aggregate metrics (normalized)", ""]
        rows = []
        for (exp, recipe, suite), g in final.groupby(["experiment", "recipe", "suite"], sort=True):
            by = g.set_index("metric")
            n = groups.get((exp, recipe, suite), (None, None))[0]
            rows.append([recipe if scores["experiment"].nunique() <= 1 else f"{recipe} ({exp})", suite] + [
                interval(by.loc[m, "value"], by.loc[m, "ci_low"], by.loc[m, "ci_high"], n)
                if m in by.index else "–" for m in stats.METRICS])
        lines += [markdown_table(["recipe", "suite", "IQM", "median", "mean", "optimality gap"], rows)]
    if cells is not None and len(cells):
        bad = cells[cells["status"] != "complete"]
        if len(bad):
            lines += [f"## Not counted: {len(bad)} of {len(cells)} cell(s)", ""]
            for r in bad.itertuples(index=False):
                lines.append(f"- {r.recipe}/{r.suite}/{r.task}/{r.seed}: **{r.status}**"
                             + (f" ({r.reason})" if isinstance(r.reason, str) and r.reason else ""))
            lines.append("")
        else:
            lines += [f"All {len(cells)} cell(s) of the grid are complete.", ""]
    notes = reference_notes(scores, cells)
    if notes:
        lines += ["## Published references", ""] + [f"- {n}" for n in notes] + [""]
    checkpoints = frames.get("checkpoints")
    if checkpoints is not None and len(checkpoints):
        lines += ["## At the published budgets", "", checkpoint_markdown(checkpoints, scores)]
    protocols = suite_protocols(cells)
    if protocols:
        lines += ["## Protocols", "", "Each suite's protocol card (run.json `protocol`; frames are env frames):", ""]
        for suite, by_recipe in protocols.items():
            recipes = list(by_recipe)
            keys = list(dict.fromkeys(k for card in by_recipe.values() for k in card))
            rows = [[key, *(_card_value(by_recipe[r].get(key)) for r in recipes)] for key in keys]
            lines += [f"**{suite}**", "", markdown_table(["setting", *recipes], rows)]
    if figures:
        lines += ["## Figures", ""] + [f"- `{p.name}`" for p in figures if p.suffix == ".png"] + [""]
    lines += ["Tables: `stats.csv` (+ `stats.json`), `profiles.csv`, `comparisons.csv`, `together.csv`, "
              "`final_scores.csv`, "
              "`final_scores.md`.", ""]
    write_text(out_path, "\n".join(lines))
    main = [p for p in figures if p.name == landing.MAIN_FIGURE]
    write_text(out_path.parent / landing.HEADLINE, landing.rst(top, main[0] if main else None))
    return out_path


def _card_value(value: Any) -> str:
    if isinstance(value, dict) and "reference" in value:  # ML.published.compare: listed in full under references
        differences = value.get("differences") or []
        return f"{value['reference']}: " + (f"{len(differences)} difference(s)" if differences else "the same")
    return "–" if value is None else str(value)
