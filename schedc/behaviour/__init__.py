"""Behaviour tests: does a policy do what it claims, measured in the sandbox kernel against the
kernel's default scheduler? A scenario (TOML) names task groups and expectations; the guest
runs the workload under ftrace; the host turns the trace into run intervals and checks them.

Modules: scenario (the file format), runner (the guest's workload program, stdlib only),
trace (ftrace text to per-task intervals), expect (the expectation kinds), run (one boot for
every policy x scenario), report (human and JSON), cli (`schedc test`).
"""
