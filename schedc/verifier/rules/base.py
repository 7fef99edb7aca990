"""What every rule gets: the model, the target kernel, and a way to say where a finding is."""

from __future__ import annotations

from dataclasses import dataclass

from clang import cindex as ci

from schedc.diagnostics import Diagnostic
from schedc.verifier.rules.catalog import RULES
from schedc.verifier.rules.clang import loc_of
from schedc.verifier.rules.kernel import TIMER_ROOT, KernelVersion
from schedc.verifier.rules.model import Call, PolicyModel, Root


@dataclass
class CheckContext:
    model: PolicyModel
    target: KernelVersion

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
