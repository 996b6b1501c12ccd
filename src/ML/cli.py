"""``ML key=value ...``: the command line front door; ``-m`` sweeps comma-separated values."""

from __future__ import annotations

import errno
import itertools
import os
import sys

from ML import helptext
from ML.errors import UserError, print_traceback


def split_sweep(token: str) -> list[str]:
    """``key=a,b,c`` → three tokens; commas inside brackets or quotes are part of one value."""
    key, sep, value = token.partition("=")
    if not sep:
        return [token]
    parts, depth, quote, current = [], 0, "", ""
    for char in value:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return [f"{key}={p}" for p in parts]


def expand(argv: list[str]) -> list[list[str]]:
    """The runs a (possibly ``-m``) command line asks for."""
    if "-m" not in argv and "--multirun" not in argv:
        return [argv]
    tokens = [t for t in argv if t not in ("-m", "--multirun")]
    return [list(combo) for combo in itertools.product(*(split_sweep(t) for t in tokens))]


# the results folder cannot take the run's files: read-only, no permission, a file in its path, a full disk
_DISK_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOSPC, errno.EDQUOT}


def debug_requested(argv: list[str]) -> bool:
    """``debug=true`` on the command line (read before the config, which may be what failed)."""
    return any(t.lstrip("+").lower() == "debug=true" for t in argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--version" in argv:
        print(f"ML (unifiedml) {helptext.version()}")
        return 0
    if not argv:
        print(helptext.no_arguments(), file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in argv):
        rest = [a for a in argv if a not in ("-h", "--help")]
        try:
            print(helptext.recipe(rest) if rest else helptext.overview(), flush=True)
        except UserError as e:
            print(f"ML: error: {e}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # ML --help | head: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    from ML.entry import start
    from ML.hyperparams import resolve_config

    try:
        runs = expand(argv)
        configs = [resolve_config(argv=run) for run in runs]  # every run checked before any trains
        for run, config in zip(runs, configs, strict=True):
            if len(runs) > 1:
                print(f"[sweep] {' '.join(run)}", flush=True)
            start(config, ["ML", *run])
    except UserError as e:
        if debug_requested(argv):
            print_traceback(e)
        print(f"ML: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in _DISK_ERRORS:
            raise
        if debug_requested(argv):
            print_traceback(e)
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        verb = "write" if full or e.errno == errno.EROFS else "access"
        print(f"ML: error: cannot {verb} {e.filename or 'a run file'}: {e.strerror}; "
              f"{'free some space or pass' if full else 'pass'} results=<a folder you can write>", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
