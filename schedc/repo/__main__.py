"""`python -m schedc.repo ...` runs `schedc repo ...`."""

from schedc.repo.cli import main

raise SystemExit(main())
