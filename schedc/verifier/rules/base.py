"""What every rule gets: the model, the target kernel (its version and, when its BTF is known,
what the BTF says), and a way to say where a finding is."""

from __future__ import annotations

from dataclasses import dataclass

from clang import cindex as ci

from schedc.diagnostics import Diagnostic
from schedc.verifier.btf import KernelFacts
from schedc.verifier.rules.catalog import RULES
from schedc.verifier.rules.clang import loc_of
from schedc.verifier.rules.kernel import TIMER_ROOT, KernelVersion, kernel_symbol, version_text
from schedc.verifier.rules.model import Call, PolicyModel, Root


@dataclass
class CheckContext:
    model: PolicyModel
    target: KernelVersion
    facts: KernelFacts | None = None  # the target kernel's BTF, when known
    kernel: str = ""  # how findings name the target (a release: 7.2.13)

    @property
    def kernel_name(self) -> str:
        return self.kernel or version_text(self.target)

    @property
    def where_from(self) -> str:
        """What decided the target, for messages: its BTF, or --target-kernel."""
        return "its BTF" if self.facts is not None else "--target-kernel"

    def has_symbol(self, name: str) -> bool:
        """Whether the target kernel has this ksym (True when its BTF is not known)."""
        return self.facts is None or self.facts.has_kfunc(kernel_symbol(name))

    def dead(self, call: Call) -> bool:
        """A call in a branch the target's BTF rules out (`if (bpf_ksym_exists(f))`)."""
        if self.facts is None:
            return False
        fn = self.model.functions.get(call.caller)
        return fn is not None and self.model.dead_on(fn, call.node, self.has_symbol)

    @property
    def file(self) -> str:
        return str(self.model.path)

    def diag(self, code: str, message: str, where: ci.Cursor | None, hint: str) -> Diagnostic:
        rule = RULES[code]
        if where is None:
            return Diagnostic(rule.severity, code, message, self.file, hint=hint)
        loc = loc_of(where)
        return Diagnostic(
            rule.severity,
            code,
            message,
            loc.file or self.file,
            loc.line,
            loc.column,
            loc.end_line,
            loc.end_column,
            hint,
        )

    def anchor(self, path: tuple[str, ...], call: Call) -> ci.Cursor:
        """Where to report a call reached along `path`: the call itself when it is written in
        the policy, else the policy's own call that leads into the header helper holding it."""
        fn = self.model.functions.get(call.caller)
        if fn is not None and fn.own:
            return call.cursor
        for i in range(len(path) - 2, -1, -1):
            outer = self.model.functions.get(path[i])
            if outer is not None and outer.own:
                for c in outer.calls:
                    if c.name == path[i + 1]:
                        return c.cursor
        return call.cursor


def describe_root(root: Root, path: tuple[str, ...] = ()) -> str:
    """`ops.enqueue (my_enqueue() → helper())`: a callback and the calls that lead on."""
    chain = [n for n in (path or (root.function,)) if not n.startswith("____")]
    calls = " → ".join(f"{name}()" for name in chain)
    if root.callback == TIMER_ROOT:
        return f"the bpf_timer callback {calls}"
    return f"ops.{root.callback} ({calls})"
