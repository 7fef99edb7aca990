"""jinja2 templates and the project's own sched_ext runtime header (data, not code)."""
