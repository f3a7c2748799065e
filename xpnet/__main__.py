"""`python -m xpnet ...` is the `xpnet` command."""

import sys

from xpnet.train.cli import main

sys.exit(main())
