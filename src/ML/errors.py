"""The one exception type for user mistakes: the CLI prints its message on one line and exits 2."""

from __future__ import annotations

import sys
import traceback
from typing import TextIO


class UserError(Exception):
    """A problem the user can fix (bad key, unknown recipe, missing file...).

    The message names the problem and the fix; it is shown without a traceback (``debug=true`` shows it).
    """


def print_traceback(error: BaseException, file: TextIO | None = None) -> None:
    """The traceback behind a one-line error, with the exceptions that ``raise ... from None`` hid."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__suppress_context__ = False
        current = current.__cause__ or current.__context__
    traceback.print_exception(error, file=file or sys.stderr)
