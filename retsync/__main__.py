"""`python -m retsync` is the same as the `retsync` command."""

import sys

from retsync.app.cli import main

sys.exit(main())
