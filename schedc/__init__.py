"""schedc: a policy compiler and repository for Linux sched_ext schedulers."""

__version__ = "0.1.0"
