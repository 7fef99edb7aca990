"""The rules of `schedc check`: one stable code each, with its severity and a one-line summary.

SARIF's rule table, docs/checks.md and the tests all read this list, so a rule exists in all of
them or in none.
"""

from __future__ import annotations

from dataclasses import dataclass

from schedc.diagnostics import Severity


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    name: str  # a short kebab-case id, for SARIF
    summary: str


_E, _W = Severity.ERROR, Severity.WARNING

RULES: dict[str, Rule] = {
    r.code: r
    for r in [
        Rule("K001", _E, "license-missing", "no license section: sched_ext kfuncs are GPL-only"),
        Rule("K002", _E, "license-not-gpl", "the license is not GPL-compatible"),
        Rule("K003", _E, "ops-missing", "no struct sched_ext_ops in a .struct_ops section"),
        Rule(
            "K004", _E, "ops-name", "ops .name missing, empty, too long or with invalid characters"
        ),
        Rule("K005", _E, "ops-flags-unknown", "ops .flags has bits the target kernel rejects"),
        Rule("K006", _E, "ops-enq-last-without-enqueue", "SCX_OPS_ENQ_LAST without ops.enqueue"),
        Rule("K007", _E, "ops-value-range", "an ops field out of the range the kernel accepts"),
        Rule(
            "K008",
            _E,
            "ops-member-missing",
            "an ops member the target kernel's struct does not have",
        ),
        Rule("K010", _E, "callback-signature", "a callback does not match struct sched_ext_ops"),
        Rule("K011", _E, "callback-not-struct-ops", "an ops callback is not a struct_ops program"),
        Rule(
            "K012",
            _E,
            "callback-sleepable",
            "a sleepable program for a callback that may not sleep",
        ),
        Rule(
            "K013",
            _E,
            "attach-target-missing",
            'a SEC("fentry") (fexit, tp_btf, lsm, ...) program with no attach target',
        ),
        Rule(
            "K020",
            _E,
            "kfunc-context",
            "a kfunc called from a callback where the kernel forbids it",
        ),
        Rule("K021", _E, "kfunc-sleepable", "a sleepable-only kfunc in a non-sleepable program"),
        Rule("K030", _E, "dsq-not-created", "a custom DSQ is inserted into but never created"),
        Rule("K031", _E, "dsq-not-consumed", "a custom DSQ is inserted into but never consumed"),
        Rule("K032", _E, "dsq-vtime-builtin", "vtime insertion into a built-in DSQ"),
        Rule("K033", _E, "dsq-consume-builtin", "consuming a built-in DSQ (SCX_DSQ_GLOBAL)"),
        Rule("K040", _E, "loop-unbounded", "a loop the verifier cannot bound"),
        Rule("K041", _E, "floating-point", "floating point in a BPF program"),
        Rule("K042", _E, "stack-size", "more than 512 bytes of stack"),
        Rule("K043", _E, "recursion", "recursion"),
        Rule("K044", _E, "too-complex", "an expression too large or deep to analyse"),
        Rule("K050", _E, "kfunc-missing", "a kfunc the target kernel does not have"),
        Rule("K051", _W, "kfunc-deprecated", "a kfunc name the target kernel deprecates"),
        Rule(
            "K052",
            _E,
            "kfunc-prototype",
            "a kfunc declared with a prototype the target kernel's BTF refuses",
        ),
        Rule(
            "K053",
            _W,
            "kfunc-prototype-differs",
            "a kfunc declared unlike the kernel's BTF in a way that loads but misbehaves",
        ),
        Rule("K060", _E, "include-absolute", "#include of an absolute path"),
        Rule("K061", _E, "include-escape", "#include that leaves the allowed include folders"),
        Rule("K062", _E, "include-computed", "#include of a macro, #embed or #include_next"),
        Rule("K063", _E, "inline-asm", "inline assembly"),
        Rule("K064", _E, "pragma", "a #pragma that changes how the file is built"),
        Rule(
            "K070", _W, "strict-priority-starvation", "strict priority between DSQs without aging"
        ),
        Rule("K071", _W, "printk-hot-path", "bpf_printk in a hot callback"),
        Rule("K072", _W, "unchecked-lookup", "a map or storage lookup used without a NULL check"),
        Rule(
            "K073",
            _E,
            "null-deref-certain",
            "a map or storage lookup dereferenced with no NULL check anywhere",
        ),
        Rule(
            "K074",
            _E,
            "reference-dropped",
            "a reference the program owns (bpf_kptr_xchg's old value, an acquired task) dropped",
        ),
    ]
}

# Codes other stages give to messages `schedc check` passes on.
CLANG_ERROR = "C001"
