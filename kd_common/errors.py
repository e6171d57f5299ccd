"""The one exception type for problems the user can fix."""


class UserError(Exception):
    """Bad input or setup. The message names the problem and the fix; the entry point prints it
    as one line on stderr and exits non-zero, with no traceback unless --debug is given."""
