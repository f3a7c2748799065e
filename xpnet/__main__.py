"""`python -m xpnet ...` is the `xpnet` command.

The entry point below catches a Ctrl-C while the command loads and runs; this `try` also
catches one that lands while the entry point's own module is imported, or just after it
returns. A Ctrl-C inside Python's start-up, before this file runs, is Python's own to report.
"""

import sys

if __name__ == "__main__":  # a tool that imports every module (the API reference) must not run it
    try:
        from xpnet.command import main

        code = main()
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
