"""The static rules of `schedc check` (the pipeline's `scan` and `lint` stages run them
through verifier/checks.py, in a libclang worker inside the sandbox).

    catalog.py   every rule's code, severity and summary (SARIF, docs/checks.md, tests)
    security.py  K044, K060-K064: what untrusted C may not include, probe or assemble
    ops.py       license, struct sched_ext_ops, callbacks (K001-K011)
    flow.py      kfunc contexts and versions, DSQs, aging, hot-path printk (K020-K071)
    code.py      loops, floats, stack, recursion, map lookups (K040-K073)
    model.py     the policy as the rules see it (functions, calls, conditions) from libclang
    clang.py     libclang parsing, the policy's own top-level cursors, inline assembly
    kernel.py    kernel versions and the kfunc / ops-flag tables per version
    base.py      the context a rule gets
    worker.py    `python -m schedc.verifier.rules.worker`: the sandboxed side
"""
