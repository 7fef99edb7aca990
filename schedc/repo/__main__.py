"""`python -m schedc.repo ...` runs `schedc repo ...`."""

import sys

from schedc.cli import main

raise SystemExit(main(["repo", *sys.argv[1:]]))
