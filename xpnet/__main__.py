"""`python -m xpnet ...` is the `xpnet` command."""

import sys

from xpnet.command import main

if __name__ == "__main__":  # a tool that imports every module (the API reference) must not run it
    sys.exit(main())
