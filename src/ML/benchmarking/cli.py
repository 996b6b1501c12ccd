"""``python -m ML.benchmarking.cli <command>``: the pipeline's command-line entry points, in one place.

It sits above the modules it calls (cells, scores, stats, analysis, plots, references), so none of them
imports upward for its command line. Each command imports only what it needs (matplotlib loads for
``plots`` alone).

    python -m ML.benchmarking.cli train --status S.json --run-dir RUN --log LOG --failures 0 -- ML task=...
    python -m ML.benchmarking.cli gather --experiment default --results results [--cells-out cells.csv]
    python -m ML.benchmarking.cli check results/default/runs/dqn/Classic/CartPole-v1/0/run.json
    python -m ML.benchmarking.cli stats --scores results/default/scores.csv --out results/default/stats.csv
    python -m ML.benchmarking.cli plots --scores scores.csv --tables results/default --out results/default/plots
    python -m ML.benchmarking.cli baseline --task CartPole-v1 --out results/baselines/Classic/CartPole-v1.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ML.benchmarking import cells

    command = args.ml[1:] if args.ml[:1] == ["--"] else args.ml
    if not command:
        parser.error("give the ML command after --")
    record = cells.train(command, Path(args.status), Path(args.run_dir), Path(args.log), args.failures)
    if record["status"] == "interrupted":
        print(f"cell interrupted ({record['signal']}): ML saved its checkpoint; the same command resumes it",
              file=sys.stderr)
        return int(record["returncode"])
    if record["status"] != "complete":
        print(f"cell failed (attempt {record['failures']}, rerun on the next snakemake call): {record['problem']}",
              file=sys.stderr)
    return 0


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ML.benchmarking import scores

    problem = scores.check(args.run_json)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def _gather(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ML.benchmarking import cells, scores

    scores.show_warnings()
    root = Path(args.results) / args.experiment
    statuses = {}
    for path in map(Path, args.runs):
        run_json = path if path.name == "run.json" else cells.run_json_of(path)
        statuses[run_json] = path
    runs = list(statuses) or scores.find_runs(root)
    table = scores.gather(runs, args.baselines or Path(args.results) / "baselines", args.experiment,
                          progress=args.progress)
    out = Path(args.out or root / "scores.csv")
    scores.write_csv(table, out)
    if args.cells_out:
        status_table = cells.table(runs, statuses)
        scores.write_csv(status_table, args.cells_out)
        counts = status_table["status"].value_counts().to_dict()
        print(f"cells: {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))} -> {args.cells_out}", flush=True)
    complete = table.groupby(scores.IDENTITY).ngroups if len(table) else 0
    print(f"scores: {complete} complete run(s), {len(table)} evaluation rows -> {out}", flush=True)
    return 0


def _stats(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import pandas as pd

    from ML.benchmarking import analysis, plots, scores

    out = Path(args.out)
    frames = analysis.tables(pd.read_csv(args.scores), out.parent, args.reps, args.seed, args.ci, args.window,
                             cells=plots.read_cells(args.cells), progress=args.progress)
    if out.name != "stats.csv":
        scores.write_csv(frames["stats"], out)
    return 0


def _plots(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import pandas as pd

    from ML.benchmarking import analysis, plots

    table = pd.read_csv(args.scores)
    frames = analysis.read_tables(args.tables)
    cells = plots.read_cells(args.cells)
    written = plots.draw(table, frames, args.out, args.suites, cells, progress=args.progress)
    if args.summary:
        name = args.experiment or ",".join(sorted(map(str, table["experiment"].unique()))) or "?"
        analysis.summary(args.summary, name, table, frames, cells, written)
        print(f"summary -> {args.summary}", flush=True)
    return 0


def _baseline(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ML.benchmarking import references

    episodes = args.episodes or references.BASELINE_EPISODES
    try:
        score = references.measure_random_baseline(args.task, args.out, episodes, args.seed)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"random baseline {args.task}: {score:.3f} over {episodes} episodes -> {args.out}", flush=True)
    return 0


PROGRESS_HELP = ("with rate and ETA: auto (a bar on a terminal; else a line every 30 s, as in snakemake's logs), "
                 "true, false")


def _progress(value: str) -> bool | str:
    choices: dict[str, bool | str] = {"auto": "auto", "true": True, "false": False}
    if value.lower() not in choices:
        raise argparse.ArgumentTypeError(f"{value!r}: use auto, true or false")
    return choices[value.lower()]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m ML.benchmarking.cli", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="run one cell's ML command and record its status (exit 0 either way; "
                                      "128 + the signal, recording nothing, when ^C or SIGTERM stopped it)")
    t.add_argument("--status", required=True)
    t.add_argument("--run-dir", required=True)
    t.add_argument("--log", required=True)
    t.add_argument("--failures", type=int, default=0)
    t.add_argument("ml", nargs=argparse.REMAINDER)
    t.set_defaults(run=_train)

    g = sub.add_parser("gather", help="run directories -> scores.csv")
    g.add_argument("--experiment", required=True)
    g.add_argument("--results", default="results")
    g.add_argument("--baselines", default=None, help="random baselines folder (default <results>/baselines)")
    g.add_argument("--out", default=None, help="default <results>/<experiment>/scores.csv")
    g.add_argument("--cells-out", default=None, help="also write cells.csv (status of every cell) here")
    g.add_argument("--progress", default="auto", type=_progress, help="runs read, " + PROGRESS_HELP)
    g.add_argument("runs", nargs="*", help="run.json files, or the pipeline's cell status files "
                                           "(cells/<recipe>/<suite>/<task>/<seed>.json); default: every run")
    g.set_defaults(run=_gather)

    c = sub.add_parser("check", help="exit 1 unless a run.json is complete")
    c.add_argument("run_json")
    c.set_defaults(run=_check)

    s = sub.add_parser("stats", help="scores.csv -> stats.csv and the tables beside it")
    s.add_argument("--scores", required=True)
    s.add_argument("--out", required=True, help="stats.csv; the other tables are written beside it")
    s.add_argument("--reps", type=int, default=2000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--ci", type=float, default=0.95)
    s.add_argument("--window", type=float, default=0.1, help="final score: last fraction of each run")
    s.add_argument("--cells", default=None, help="cells.csv: the runs' protocol cards (stats.json protocols)")
    s.add_argument("--progress", default="auto", type=_progress,
                   help="groups and pairs bootstrapped, " + PROGRESS_HELP)
    s.set_defaults(run=_stats)

    p = sub.add_parser("plots", help="scores.csv and the tables -> figures (and summary.md)")
    p.add_argument("--scores", required=True)
    p.add_argument("--tables", required=True, help="folder of stats.csv, profiles.csv, comparisons.csv ...")
    p.add_argument("--out", required=True, help="folder of the figures")
    p.add_argument("--suites", nargs="*", default=None, help="draw these suites' curves (default: all)")
    p.add_argument("--cells", default=None, help="cells.csv (status and protocol of every cell)")
    p.add_argument("--summary", default=None, help="also write the one-page summary.md here")
    p.add_argument("--experiment", default=None)
    p.add_argument("--progress", default="auto", type=_progress, help="figures drawn, " + PROGRESS_HELP)
    p.set_defaults(run=_plots)

    b = sub.add_parser("baseline", help="measure a classic-control task's random-agent score")
    b.add_argument("--task", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--episodes", type=int, default=None, help="default: references.BASELINE_EPISODES")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(run=_baseline)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    return args.run(args, top)


if __name__ == "__main__":
    sys.exit(main())
