"""The one exception type for user mistakes: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """A problem the user can fix (bad key, unknown recipe, missing file...).

    The message names the problem and the fix; it is shown without a traceback.
    """
