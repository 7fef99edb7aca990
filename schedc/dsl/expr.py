"""Expressions: their types and units (E101-E115), matchers (E201-E203), the list, depth and
nesting limits (E308, E309, E009), and their constant values.

`Expressions` types every expression of one policy, one `visit_*` rule per node class of
`schedc.dsl.ast`; `_Fold` folds constants, likewise. The statement rules (sema.py) call
`typeof`, `expect`, `const` and `task_free`.
"""

from __future__ import annotations

import difflib

from schedc.diagnostics import Diagnostic, Severity, Span
from schedc.dsl import ast
from schedc.dsl.ir import TParam
from schedc.dsl.language import (
    ATTRIBUTES,
    COMM_LEN,
    FUNCTIONS,
    MAX_CGROUP_DEPTH,
    MAX_CGROUP_NAME,
    MAX_EXPR_DEPTH,
    MAX_GLOB_LEN,
    MAX_LIST_ITEMS,
    MAX_NESTING,
    MAX_NUMBER,
    OPERATORS,
    Ty,
)


class Report:
    """The diagnostics of one policy file, in the order they were found."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diags: list[Diagnostic] = []

    def error(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic.at(Severity.ERROR, code, message, self.file, span, hint))

    def warn(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic.at(Severity.WARNING, code, message, self.file, span, hint))


def did_you_mean(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _depth(expr: ast.Expr) -> int:
    return 1 + max((_depth(c) for c in ast.children(expr)), default=0)


def too_deep(file: str, span: Span, brackets: bool = False) -> Diagnostic:
    """E009, the one nesting limit (MAX_NESTING): brackets the parser finds nested too deep
    before it parses, or an expression too deep for the parser or sema to recurse over."""
    if brackets:
        message = f"brackets are nested more than {MAX_NESTING} levels deep"
        hint = "split the expression: put parts into params, or use min/max/clamp"
    else:
        message = (
            f"an expression is too long or too deeply nested to compile (more than "
            f"{MAX_NESTING} operators deep)"
        )
        hint = "split it: put parts into params, or use min/max/clamp"
    return Diagnostic.at(Severity.ERROR, "E009", message, file, span, hint)


class Expressions(ast.ExprVisitor[Ty]):
    """The types of one policy's expressions. `typeof` types an expression and records it;
    the `visit_*` methods are the rules, one per node class, and report what is wrong."""

    def __init__(self, report: Report, params: dict[str, TParam], declared: frozenset[str]) -> None:
        self.error = report.error
        self.params = params  # the params defined so far, by name
        self.declared = declared  # the policy's class and queue names, for a hint
        self.types: dict[int, Ty] = {}
        self.stats: set[str] = set()
        self.attrs: set[tuple[str, ...]] = set()
        self.folded: dict[tuple[int, bool], int | None] = {}
        self.overflows: dict[int, ast.Expr] = {}
        self._fold = {False: _Fold(self, literal_only=False), True: _Fold(self, literal_only=True)}

    # -- entry points for the statement rules ------------------------------------------------
    def typeof(self, expr: ast.Expr) -> Ty:
        ty = self.visit(expr)
        self.types[id(expr)] = ty
        if ty in (Ty.INT, Ty.DURATION) and isinstance(expr, (ast.Binary, ast.Neg, ast.Call)):
            self.const(expr)  # folds it once, so that a constant overflow is reported (E115)
        return ty

    def expect(self, expr: ast.Expr, want: Ty, what: str, code: str) -> Ty:
        got = self.typeof(expr)
        if got not in (want, Ty.ERROR):
            hint = None
            if want == Ty.DURATION and got == Ty.INT:
                hint = "give it a unit: ns, us, ms or s"
            elif want == Ty.BOOL:
                hint = "write a condition, e.g. task.avg_runtime > 5ms"
            self.error(
                code, f"{what} must be {want.describe()}, got {got.describe()}", expr.span, hint
            )
        if _depth(expr) > MAX_EXPR_DEPTH:
            self.error(
                "E309",
                f"expression is nested more than {MAX_EXPR_DEPTH} levels deep",
                expr.span,
                "split it into params or simplify it",
            )
        return got

    def task_free(self, expr: ast.Expr, what: str) -> bool:
        for node in ast.walk(expr):
            if isinstance(node, ast.Attr):
                self.error(
                    "E113",
                    f"{what} must not depend on the task ({node.dotted})",
                    node.span,
                    "use a constant or a param",
                )
                return False
        return True

    def const(self, expr: ast.Expr, literal_only: bool = False) -> int | None:
        """Value of a task-independent expression (params at their defaults), else None.
        A value outside s64 is None too, and the expression is kept in `overflows` (E115)."""
        key = (id(expr), literal_only)
        if key in self.folded:
            return self.folded[key]
        value = self._fold[literal_only].visit(expr)
        if value is not None and not -MAX_NUMBER - 1 <= value <= MAX_NUMBER:
            self.overflows.setdefault(id(expr), expr)
            value = None
        self.folded[key] = value
        return value

    def report_overflows(self) -> None:
        lines: set[int] = set()
        for expr in self.overflows.values():
            if expr.span.line in lines:
                continue  # one per line: the parts of one long product are one mistake
            lines.add(expr.span.line)
            self.error(
                "E115",
                "this constant expression overflows 64 bits",
                expr.span,
                "counts and durations (in ns) stay below 2^63; the C would wrap around",
            )

    # -- the typing rules --------------------------------------------------------------------
    def visit_IntLit(self, e: ast.IntLit) -> Ty:
        return Ty.INT

    def visit_DurationLit(self, e: ast.DurationLit) -> Ty:
        return Ty.DURATION

    def visit_BoolLit(self, e: ast.BoolLit) -> Ty:
        return Ty.BOOL

    def visit_StringLit(self, e: ast.StringLit) -> Ty:
        return Ty.STRING

    def visit_Attr(self, e: ast.Attr) -> Ty:
        info = ATTRIBUTES.get(e.path)
        if info is None:
            known = [".".join(k) for k in ATTRIBUTES]
            close = did_you_mean(".".join(e.path), known)
            hint = (
                close.replace("'", "'task.", 1)
                if close
                else "task attributes: " + ", ".join("task." + k for k in known)
            )
            self.error("E106", f"unknown task attribute '{e.dotted}'", e.span, hint)
            return Ty.ERROR
        self.attrs.add(e.path)
        if info.stat:
            self.stats.add(e.path[0])
        return info.ty

    def visit_Ref(self, e: ast.Ref) -> Ty:
        name = e.name
        param = self.params.get(name)
        if param is None:
            hint = did_you_mean(name, list(self.params))
            if name in self.declared:
                hint = (
                    f"'{name}' is a class or queue; expressions can use params and task.ATTRIBUTE"
                )
            elif name in {"comm", "pid", "nice", "weight", "uid", "cgroup"}:
                hint = f"task attributes are written task.{name}"
            self.error("E107", f"unknown name '{name}'", e.span, hint)
            return Ty.ERROR
        param.used = True
        return param.ty

    def visit_Call(self, e: ast.Call) -> Ty:
        func, args = e.func, e.args
        arg_types = [self.typeof(a) for a in args]
        if func not in FUNCTIONS:
            hint = did_you_mean(func, list(FUNCTIONS)) or "functions: " + ", ".join(FUNCTIONS)
            self.error("E108", f"unknown function '{func}'", e.span, hint)
            return Ty.ERROR
        arity = FUNCTIONS[func].arity
        if len(args) != arity:
            self.error("E109", f"{func}() takes {arity} arguments, got {len(args)}", e.span)
            return Ty.ERROR
        if Ty.ERROR in arg_types:
            return Ty.ERROR
        first = arg_types[0]
        if first not in (Ty.INT, Ty.DURATION) or any(t != first for t in arg_types):
            self.error(
                "E101",
                f"{func}() needs arguments of one numeric kind, got "
                + ", ".join(t.describe() for t in arg_types),
                e.span,
                "durations and counts do not mix: write 5ms, not 5",
            )
            return Ty.ERROR
        return first

    def visit_Neg(self, e: ast.Neg) -> Ty:
        t = self.typeof(e.operand)
        if t is Ty.DURATION:
            self.error(
                "E104",
                "a duration cannot be negative",
                e.span,
                "durations are unsigned; subtract from another duration instead",
            )
            return Ty.ERROR
        if t not in (Ty.INT, Ty.ERROR):
            self.error("E105", f"cannot negate {t.describe()}", e.span)
            return Ty.ERROR
        return t

    def visit_Binary(self, e: ast.Binary) -> Ty:
        """An arithmetic operator's rule is its OPERATORS row (dsl/language.py)."""
        op, lt, rt = OPERATORS[e.op], self.typeof(e.left), self.typeof(e.right)
        if Ty.ERROR in (lt, rt):
            return Ty.ERROR
        numeric = (Ty.INT, Ty.DURATION)
        if lt not in numeric or rt not in numeric:
            bad = lt if lt not in numeric else rt
            self.error("E105", f"'{e.op}' cannot be applied to {bad.describe()}", e.span)
            return Ty.ERROR
        if op.divides and self.const(e.right) == 0:
            self.error("E103", "division by zero", e.right.span)
            return Ty.ERROR
        operation = op.operations.get((lt, rt))
        if operation is not None:
            return operation.result
        refusal = op.refusals.get((lt, rt))
        if refusal is None:
            message = f"'{e.op}' cannot be applied to {lt.describe()} and {rt.describe()}"
            self.error("E105", message, e.span)
        else:
            words = {"left": lt.describe(), "right": rt.describe()}
            self.error(
                refusal.code,
                refusal.message.format(**words),
                e.span,
                refusal.hint.format(**words),
            )
        return Ty.ERROR

    def visit_Compare(self, e: ast.Compare) -> Ty:
        op, lt, rt = e.op, self.typeof(e.left), self.typeof(e.right)
        if Ty.ERROR in (lt, rt):
            return Ty.BOOL
        if lt == Ty.COMM or rt == Ty.COMM:
            other = rt if lt == Ty.COMM else lt
            lit = e.right if lt == Ty.COMM else e.left
            if op not in ("==", "!=") or other != Ty.STRING:
                self.error(
                    "E105",
                    f"a task name can only be compared with == or != to a string, "
                    f"not with '{op}' to {other.describe()}",
                    e.span,
                    'use task.comm == "name", startswith "pre", matches "glob*" or in [...]',
                )
            else:
                assert isinstance(lit, ast.StringLit)
                self._check_comm_literal(lit)
            return Ty.BOOL
        if lt == Ty.CGROUP or rt == Ty.CGROUP:
            self.error(
                "E105",
                "a cgroup path can only be tested with 'under'",
                e.span,
                'write task.cgroup under "/system.slice"',
            )
            return Ty.BOOL
        if lt != rt or lt == Ty.STRING:
            hint = None
            if {lt, rt} == {Ty.INT, Ty.DURATION}:
                count_side = e.left if lt == Ty.INT else e.right
                if isinstance(count_side, ast.IntLit):
                    hint = "durations need a unit: write 10ms, not 10"
                else:
                    hint = "a count and a duration cannot be compared: compare like with like"
            self.error("E105", f"cannot compare {lt.describe()} with {rt.describe()}", e.span, hint)
            return Ty.BOOL
        if lt == Ty.BOOL and op not in ("==", "!="):
            self.error("E105", f"conditions cannot be ordered with '{op}'", e.span)
        return Ty.BOOL

    def visit_InList(self, e: ast.InList) -> Ty:
        lt = self.typeof(e.left)
        if len(e.items) == 0:
            self.error("E111", "an empty list never matches", e.list_span)
            return Ty.BOOL
        if len(e.items) > MAX_LIST_ITEMS:
            self.error(
                "E308",
                f"a list may hold at most {MAX_LIST_ITEMS} items, this one has {len(e.items)}",
                e.list_span,
                "use startswith or matches with a glob to cover many names",
            )
        for item in e.items:
            it = self.typeof(item)
            if lt == Ty.ERROR or it == Ty.ERROR:
                continue
            if lt == Ty.COMM:
                if not isinstance(item, ast.StringLit):
                    self.error("E105", "task names can only be listed as strings", item.span)
                else:
                    self._check_comm_literal(item)
            elif lt in (Ty.INT, Ty.DURATION):
                if it != lt or self.const(item, literal_only=True) is None:
                    self.error(
                        "E105",
                        f"list items must be constants of the left side's type, {lt.describe()}",
                        item.span,
                    )
            else:
                self.error("E105", f"'in' cannot test {lt.describe()}", e.left.span)
                break
        return Ty.BOOL

    def visit_StrTest(self, e: ast.StrTest) -> Ty:
        lt = self.typeof(e.left)
        self.typeof(e.pattern)
        pat = e.pattern.value
        if lt == Ty.ERROR:
            return Ty.BOOL
        if e.op == "under":
            if lt != Ty.CGROUP:
                self.error(
                    "E105", "'under' tests a cgroup path: task.cgroup under \"/a/b\"", e.span
                )
                return Ty.BOOL
            self._check_cgroup_path(e.pattern)
            return Ty.BOOL
        if lt != Ty.COMM:
            self.error(
                "E105",
                f"'{e.op}' tests a task name, not {lt.describe()}",
                e.span,
                'for cgroups write task.cgroup under "/path"' if lt == Ty.CGROUP else None,
            )
            return Ty.BOOL
        if e.op == "startswith":
            self._check_comm_literal(e.pattern, prefix=True)
            return Ty.BOOL
        # glob
        if len(pat) > MAX_GLOB_LEN or len(pat.replace("*", "")) > COMM_LEN:
            self.error(
                "E203",
                f'glob "{pat}" is longer than a task name can be',
                e.pattern.span,
                f"task names have at most {COMM_LEN} characters",
            )
        elif pat == "":
            self.error("E203", "an empty glob matches only an empty name", e.pattern.span)
        elif "[" in pat or "]" in pat:
            self.error(
                "E203",
                "character classes ([...]) are not supported in globs",
                e.pattern.span,
                "use * and ?, or list the names with in [...]",
            )
        return Ty.BOOL

    def visit_BoolOp(self, e: ast.BoolOp) -> Ty:
        for o in e.operands:
            t = self.typeof(o)
            if t not in (Ty.BOOL, Ty.ERROR):
                self.error(
                    "E110",
                    f"'{e.op}' needs conditions on both sides, got {t.describe()}",
                    o.span,
                    "compare it: e.g. task.nice < 0",
                )
        return Ty.BOOL

    def visit_Not(self, e: ast.Not) -> Ty:
        t = self.typeof(e.operand)
        if t not in (Ty.BOOL, Ty.ERROR):
            self.error("E110", f"'not' needs a condition, got {t.describe()}", e.operand.span)
        return Ty.BOOL

    # -- matcher literals --------------------------------------------------------------------
    def _check_comm_literal(self, lit: ast.StringLit, prefix: bool = False) -> None:
        if len(lit.value.encode()) > COMM_LEN:
            hint = f"the kernel keeps the first {COMM_LEN} bytes of a task name"
            if not prefix:
                hint += f': compare with "{lit.value.encode()[:COMM_LEN].decode(errors="ignore")}"'
            self.error(
                "E201",
                f'task names are at most {COMM_LEN} bytes: "{lit.value}" can never match',
                lit.span,
                hint,
            )
        elif lit.value == "":
            self.error("E201", "an empty task name never matches", lit.span)

    def _check_cgroup_path(self, lit: ast.StringLit) -> None:
        pat = lit.value
        parts = pat.strip("/").split("/") if pat.strip("/") else []
        if any(p in (".", "..") for p in parts):
            self.error(
                "E202",
                f'cgroup path "{pat}" contains "." or ".."',
                lit.span,
                "write the path from the cgroup root without . or .. parts",
            )
        elif pat.startswith("/sys/fs/cgroup"):
            self.error(
                "E202",
                f'"{pat}" is a file-system path; cgroup paths start at the cgroup root',
                lit.span,
                f'drop the mount point: "{pat.removeprefix("/sys/fs/cgroup") or "/"}"',
            )
        elif not pat.startswith("/") or any(p == "" for p in parts):
            self.error(
                "E202",
                f'"{pat}" is not an absolute cgroup path',
                lit.span,
                'write it from the cgroup root, e.g. "/system.slice/nginx.service"',
            )
        elif len(parts) > MAX_CGROUP_DEPTH or any(len(p) > MAX_CGROUP_NAME for p in parts):
            self.error(
                "E202",
                f"cgroup paths may have at most {MAX_CGROUP_DEPTH} parts of "
                f"{MAX_CGROUP_NAME} characters",
                lit.span,
            )


class _Fold(ast.ExprVisitor[int | None]):
    """The value of a constant expression, or None. Params count at their defaults unless
    `literal_only` (a loader may change them). Subexpressions go through `Expressions.const`,
    which remembers each value and catches values outside s64."""

    def __init__(self, exprs: Expressions, literal_only: bool) -> None:
        self.exprs = exprs
        self.literal_only = literal_only

    def _const(self, e: ast.Expr) -> int | None:
        return self.exprs.const(e, self.literal_only)

    def visit_IntLit(self, e: ast.IntLit) -> int | None:
        return e.value

    def visit_DurationLit(self, e: ast.DurationLit) -> int | None:
        return e.ns

    def visit_BoolLit(self, e: ast.BoolLit) -> int | None:
        return int(e.value)

    def visit_StringLit(self, e: ast.StringLit) -> int | None:
        return None

    def visit_Attr(self, e: ast.Attr) -> int | None:
        return None  # depends on the task

    def visit_Ref(self, e: ast.Ref) -> int | None:
        param = None if self.literal_only else self.exprs.params.get(e.name)
        return None if param is None else param.value

    def visit_Call(self, e: ast.Call) -> int | None:
        func = FUNCTIONS.get(e.func)
        if func is None or len(e.args) != func.arity:
            return None
        vals = [self._const(a) for a in e.args]
        ints = [v for v in vals if v is not None]
        return func.fold(*ints) if len(ints) == len(vals) else None

    def visit_Neg(self, e: ast.Neg) -> int | None:
        v = self._const(e.operand)
        return None if v is None else -v

    def visit_Binary(self, e: ast.Binary) -> int | None:
        a, b = self._const(e.left), self._const(e.right)
        lt, rt = self.exprs.types.get(id(e.left)), self.exprs.types.get(id(e.right))
        if a is None or b is None or lt is None or rt is None:
            return None
        operation = OPERATORS[e.op].operations.get((lt, rt))
        return None if operation is None else operation.fold(a, b)

    # Conditions are not folded: reachability (W003, E143) folds only literal `true`/`false`.
    def visit_Compare(self, e: ast.Compare) -> int | None:
        return None

    def visit_InList(self, e: ast.InList) -> int | None:
        return None

    def visit_StrTest(self, e: ast.StrTest) -> int | None:
        return None

    def visit_BoolOp(self, e: ast.BoolOp) -> int | None:
        return None

    def visit_Not(self, e: ast.Not) -> int | None:
        return None
