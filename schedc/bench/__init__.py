"""`schedc bench`: a policy against the kernel's default scheduler under a workload, in the
sandbox (or on a sched_ext host when asked), with interleaved runs and bootstrap intervals.

    runner.py     plans the runs, boots the guest once, reads every run's outcome
    stats.py      medians, spreads, the bootstrap comparison
    plot.py       the optional PNG (matplotlib)
    targets.py    the examples' targets (benchmarks/targets.toml) and judging results by them

The recipes and their parsers are entries of the one workload table, schedc/workloads.py.

Results are data; the command line hands them to the repository when asked (--record).
"""
