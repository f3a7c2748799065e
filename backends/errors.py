"""The one error type a user sees as a single line.

Every package raises a subclass of `XpnetError` for input the user can fix (a wrong name,
a missing library, a bad file). The command line prints its message alone, without a
traceback; anything else that escapes is a bug in xpnet and keeps its traceback.
"""


class XpnetError(Exception):
    """A problem with what was asked for; the message says what was wrong and what to do."""
