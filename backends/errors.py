"""The one error type a user sees as a single line.

Every package raises a subclass of `XpnetError` for input the user can fix (a wrong name,
a missing library, a bad file). The command line prints its message alone, without a
traceback; anything else that escapes is a bug in xpnet and keeps its traceback.
"""


class XpnetError(Exception):
    """A problem with what was asked for; the message says what was wrong and what to do."""


class BackendError(XpnetError):
    """A backend that was asked for cannot be used here."""


def choose(name, table, what: str, error: type[XpnetError] = XpnetError, extra: tuple = ()):
    """`name` if `table` (or `extra`) has it, else `error`: "unknown WHAT 'name': use one of ...".

    Every named choice (activation, loss, init, optimizer, backend, dtype, op) is looked up
    here, in the table that defines it, so the message lists what exists, always the same way.
    """
    if name in table or name in extra:
        return name
    raise error(f"unknown {what} {name!r}: use one of {', '.join([*extra, *table])}")
