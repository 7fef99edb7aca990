"""Text → AST with lark (LALR), syntax errors turned into diagnostics."""

from __future__ import annotations

import dataclasses
import re
import typing
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lexer import PatternStr
from lark.tree import Meta

from schedc.diagnostics import Diagnostic, Severity, Span
from schedc.dsl import ast
from schedc.dsl.expr import too_deep
from schedc.dsl.language import MAX_NESTING, MAX_NUMBER, MAX_SOURCE_BYTES, operator_words

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "INT": "an integer",
    "DURATION": "a duration (e.g. 10ms)",
    "COMP_OP": "a comparison (==, <, ...)",
    "STR_OP": "'matches', 'startswith' or 'under'",
    "DIRECTION": "'ascending' or 'descending'",
}
_MAX_DIGITS = len(str(MAX_NUMBER))  # more significant digits than this is too large
_BRACKETS = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[(\[]|[)\]]')
PREEMPTS_HINT = (
    "'preempts' alone preempts every class ranked below; 'preempts NAME, NAME' names the "
    "classes it may preempt (and only those): class ui when ... preempts background, batch"
)
_BAD_NUMBER = re.compile(r"\d+(?:\.\d+)?[A-Za-z_]\w*")


NOT_WHOLE, TOO_LARGE, NOT_A_DURATION = "not whole", "too large", "not a duration"


def duration_ns(text: str) -> int | str:
    """The nanoseconds a duration literal (`20ms`, `1.5us`) stands for, or why it stands for
    none: NOT_WHOLE (finer than 1ns), TOO_LARGE (2^63 ns or more) or NOT_A_DURATION. The
    parser's DURATION tokens and `--set` values (dsl/tunables.py) are read by it."""
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?(ns|us|ms|s)", text)
    if m is None:
        return NOT_A_DURATION
    whole, frac, unit = m.group(1).lstrip("0"), (m.group(2) or "").rstrip("0"), m.group(3)
    if len(whole) > _MAX_DIGITS:
        return TOO_LARGE
    scale = _UNITS[unit]
    if len(frac) > len(str(scale)) - 1:  # finer than 1ns whatever the digits
        return NOT_WHOLE
    num = int(whole + frac or "0") * scale
    den = 10 ** len(frac)
    if num % den:
        return NOT_WHOLE
    return num // den if num // den <= MAX_NUMBER else TOO_LARGE


def _grammar() -> str:
    return resources.files("schedc.dsl").joinpath("policy.lark").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(_grammar(), parser="lalr", propagate_positions=True, maybe_placeholders=False)


def build_grammar() -> None:
    """Builds (and caches) the parser's LALR tables: a long-lived process that forks workers
    calls this once so that no worker pays for it."""
    _lark()
    statement_words()


@lru_cache(maxsize=1)
def statement_words() -> str:
    """The statements' keywords, in the grammar's order (`?item: tags_stmt | ...`)."""
    item = re.search(r"^\?item:(.*?)\n\n", _grammar(), re.S | re.M)
    assert item is not None, "policy.lark lists its statements in ?item"
    return ", ".join(re.findall(r"(\w+)_stmt", item.group(1)))


def _span_of(node: Tree | Token) -> Span:
    if isinstance(node, Token):
        return Span(
            node.line or 1, node.column or 1, node.end_line or 1, (node.end_column or 2) - 1
        )
    return _meta_span(node.meta)


def _meta_span(m: Meta) -> Span:
    return Span(m.line, m.column, m.end_line, m.end_column - 1)


def _join(a: Span, b: Span) -> Span:
    return Span(a.line, a.column, b.end_line, b.end_column)


class _ParseError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


_Kids = list[Any]  # a rule's children: tokens, trees, or what this transformer made of them
_Added = list[tuple[str, Any]]  # what a statement adds to the Policy: (field, item) pairs


class _ToAst(Transformer):
    """Bottom-up conversion of lark's tree to `schedc.dsl.ast` nodes: one method per rule
    of policy.lark that becomes a node, the whole tree becoming one `ast.Policy`."""

    def __init__(self, file: str) -> None:
        super().__init__(visit_tokens=False)
        self.file = file

    def _fail(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        raise _ParseError(Diagnostic.at(Severity.ERROR, code, message, self.file, span, hint))

    # literals
    def _too_large(self, what: str, span: Span, hint: str) -> None:
        self._fail("E008", f"{what} is too large", span, hint)

    def number(self, tok: Token, negative: bool = False, span: Span | None = None) -> int:
        """An INT token's value; E008 when it is above MAX_NUMBER (checked on the digits
        first: Python refuses to convert strings of more than 4300 digits)."""
        text = str(tok)
        digits = text.lstrip("0")
        span = span or _span_of(tok)
        if len(digits) > _MAX_DIGITS or int(digits or "0") > MAX_NUMBER:
            self._too_large(
                "number " + _shorten(("-" if negative else "") + text, unit="digits"),
                span,
                "integers are 64-bit: at most 9223372036854775807",
            )
        value = int(digits or "0")
        return -value if negative else value

    def _duration(self, tok: Token) -> ast.DurationLit:
        value = duration_ns(str(tok))
        if value == NOT_WHOLE:
            self._not_whole(tok)
        if not isinstance(value, int):
            too_large = "durations must stay below 292 years (2^63 ns)"
            self._too_large(f"duration '{_shorten(str(tok))}'", _span_of(tok), too_large)
        assert isinstance(value, int)
        return ast.DurationLit(_span_of(tok), value, str(tok))

    def _not_whole(self, tok: Token) -> None:
        self._fail(
            "E005",
            f"duration '{_shorten(str(tok))}' is not a whole number of nanoseconds",
            _span_of(tok),
            "durations are whole nanoseconds: round it, e.g. 2ns instead of 2.5ns",
        )

    @v_args(tree=True)
    def duration(self, tree: Tree) -> ast.DurationLit:
        return self._duration(tree.children[0])

    @v_args(tree=True)
    def int(self, tree: Tree) -> ast.IntLit:
        tok = tree.children[0]
        return ast.IntLit(_span_of(tok), self.number(tok))

    @v_args(tree=True)
    def neg_int(self, tree: Tree) -> ast.IntLit:
        value = self.number(tree.children[0], negative=True, span=_span_of(tree))
        return ast.IntLit(_span_of(tree), value)

    @v_args(tree=True)
    def true(self, tree: Tree) -> ast.BoolLit:
        return ast.BoolLit(_span_of(tree), True)

    @v_args(tree=True)
    def false(self, tree: Tree) -> ast.BoolLit:
        return ast.BoolLit(_span_of(tree), False)

    def _string(self, tok: Token) -> ast.StringLit:
        raw = str(tok)[1:-1]
        out: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch == "\\":
                nxt = raw[i + 1]
                if nxt not in '"\\':
                    col = (tok.column or 1) + 1 + i
                    self._fail(
                        "E006",
                        f"unknown escape '\\{nxt}' in string",
                        Span(tok.line or 1, col, tok.line or 1, col + 1),
                        'only \\" and \\\\ are escapes in schedc strings',
                    )
                out.append(nxt)
                i += 2
            else:
                out.append(ch)
                i += 1
        return ast.StringLit(_span_of(tok), "".join(out))

    @v_args(tree=True)
    def string(self, tree: Tree) -> ast.StringLit:
        return self._string(tree.children[0])

    # expressions
    @v_args(tree=True)
    def attr(self, tree: Tree) -> ast.Attr:
        return ast.Attr(_span_of(tree), tuple(str(t) for t in tree.children))

    @v_args(tree=True)
    def ref(self, tree: Tree) -> ast.Ref:
        return ast.Ref(_span_of(tree), str(tree.children[0]))

    @v_args(tree=True)
    def call(self, tree: Tree) -> ast.Call:
        name, *args = tree.children
        return ast.Call(_span_of(tree), str(name), tuple(a for a in args if a is not None))

    @v_args(tree=True)
    def neg(self, tree: Tree) -> ast.Expr:
        operand = tree.children[0]
        if isinstance(operand, ast.IntLit):
            return ast.IntLit(_span_of(tree), -operand.value)
        return ast.Neg(_span_of(tree), operand)

    @v_args(tree=True)
    def binary(self, tree: Tree) -> ast.Binary:
        left, op, right = tree.children
        return ast.Binary(_join(left.span, right.span), str(op), left, right)

    @v_args(tree=True)
    def compare(self, tree: Tree) -> ast.Compare:
        left, op, right = tree.children
        return ast.Compare(_join(left.span, right.span), str(op), left, right)

    @v_args(tree=True)
    def in_list(self, tree: Tree) -> ast.InList:
        left, (items, list_span) = tree.children
        return ast.InList(_join(left.span, list_span), left, items, list_span)

    @v_args(tree=True)
    def list(self, tree: Tree) -> tuple[tuple[ast.Expr, ...], Span]:
        return tuple(c for c in tree.children if c is not None), _span_of(tree)

    @v_args(tree=True)
    def str_test(self, tree: Tree) -> ast.StrTest:
        left, op, tok = tree.children
        pattern = self._string(tok)
        return ast.StrTest(_join(left.span, pattern.span), str(op), left, pattern)

    def _boolop(self, op: str, tree: Tree) -> ast.BoolOp:
        left, right = tree.children
        items: list[ast.Expr] = []
        for side in (left, right):
            if isinstance(side, ast.BoolOp) and side.op == op:
                items.extend(side.operands)
            else:
                items.append(side)
        return ast.BoolOp(_join(left.span, right.span), op, tuple(items))

    @v_args(tree=True)
    def or_(self, tree: Tree) -> ast.BoolOp:
        return self._boolop("or", tree)

    @v_args(tree=True)
    def and_(self, tree: Tree) -> ast.BoolOp:
        return self._boolop("and", tree)

    @v_args(tree=True)
    def not_(self, tree: Tree) -> ast.Not:
        return ast.Not(_span_of(tree), tree.children[0])

    # statements: each gives the (Policy field, item) pairs it adds, which `policy` appends in
    # source order. Sub-rules without a method here (when, fifo, queue_lag, ...) stay trees.
    @v_args(meta=True)
    def tags_stmt(self, meta: Meta, kids: _Kids) -> _Added:
        return [("tags", _name(t)) for t in kids] + [("tag_spans", _meta_span(meta))]

    @v_args(meta=True)
    def param_stmt(self, meta: Meta, kids: _Kids) -> _Added:
        name, *rest = kids
        type_name = None
        if isinstance(rest[0], Tree) and rest[0].data == "param_type":
            type_name = _name(rest.pop(0).children[0])
        value = rest.pop(0)
        low, high = rest[0].children if rest else (None, None)
        param = ast.Param(_name(name), type_name, value, low, high, _meta_span(meta))
        return [("params", param)]

    @v_args(meta=True)
    def cpu_range(self, meta: Meta, kids: _Kids) -> ast.CpuRange:
        return ast.CpuRange(self.number(kids[0]), self.number(kids[-1]), _meta_span(meta))

    @v_args(meta=True)
    def class_stmt(self, meta: Meta, kids: _Kids) -> _Added:
        name, cond, *options = kids
        when = cond.children[0] if cond.data == "when" else None
        cpus: list[ast.CpuRange] | None = None
        cpus_span = preempts = None
        targets: list[ast.Name] = []
        forms: set[str] = set()
        for opt in options:
            if opt.data in ("on_cpus", "on_cpus_except"):  # its children are CpuRanges by now
                cpus = (cpus or []) + opt.children
                cpus_span = _span_of(opt)
                forms.add(opt.data)
            else:
                preempts = _span_of(opt)
                targets += [_name(t) for t in opt.children]
        decl = ast.ClassDecl(
            _name(name),
            when,
            cpus,
            cpus_span,
            preempts,
            _meta_span(meta),
            targets,
            cpus_except="on_cpus_except" in forms,
            cpus_mixed=len(forms) > 1,
        )
        return [("classes", decl)]

    @v_args(meta=True)
    def queue_stmt(self, meta: Meta, kids: _Kids) -> _Added:
        name, *rest = kids
        lag = None
        strict = None
        if isinstance(rest[-1], Tree) and rest[-1].data == "queue_strict":
            strict = _span_of(rest.pop())
        max_wait = None
        if isinstance(rest[-1], Tree) and rest[-1].data == "queue_wait":
            max_wait = rest.pop().children[0]
        if isinstance(rest[-1], Tree) and rest[-1].data == "queue_lag":
            lag = rest.pop().children[0]
        order = rest.pop()
        key = direction = None
        if order.data in ("ordered", "deadline"):
            key = order.children[0]
            if order.data == "ordered":
                direction = str(order.children[1])
        classes = [_name(t) for t in rest]
        decl = ast.QueueDecl(
            _name(name),
            classes,
            str(order.data),
            key,
            direction,
            lag,
            _span_of(order),
            _meta_span(meta),
            strict,
            max_wait,
        )
        return [("queues", decl)]

    @v_args(meta=True)
    def strict(self, meta: Meta, kids: _Kids) -> _Added:
        names = list(kids)
        aging = names.pop().children[0] if names and isinstance(names[-1], Tree) else None
        queues = [_name(t) for t in names]
        return [("dispatches", ast.Dispatch("strict", queues, [], aging, _meta_span(meta)))]

    def _weights(self, kind: str, meta: Meta, kids: _Kids) -> _Added:
        queues = [_name(w.children[0]) for w in kids]
        weights = [(self.number(w.children[1]), _span_of(w.children[1])) for w in kids]
        return [("dispatches", ast.Dispatch(kind, queues, weights, None, _meta_span(meta)))]

    @v_args(meta=True)
    def weighted(self, meta: Meta, kids: _Kids) -> _Added:
        return self._weights("weighted", meta, kids)

    @v_args(meta=True)
    def shares(self, meta: Meta, kids: _Kids) -> _Added:
        return self._weights("shares", meta, kids)

    @v_args(meta=True)
    def slice_stmt(self, meta: Meta, kids: _Kids) -> _Added:
        return [
            ("slices", ast.SliceEntry(_name(e.children[0]), e.children[1], _span_of(e)))
            for e in kids
        ]

    @v_args(meta=True)
    def latency_stmt(self, meta: Meta, kids: _Kids) -> _Added:
        return [
            ("latency", ast.LatencyEntry(_name(e.children[0]), e.children[1], _span_of(e)))
            for e in kids
        ]

    def _statement(self, rule: str, children: _Kids, meta: Meta) -> _Added:
        """The node `ast.statement` registered for `rule`, its fields filled from the rule's
        children by the decorator's conventions."""
        cls, policy_field = ast.STATEMENT_NODES[rule]
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.name != "span"]
        prefix = rule.removesuffix("_stmt") + "_"
        values: dict[str, Any] = {"span": _meta_span(meta)}
        positional: list[Any] = []
        for child in children:
            if isinstance(child, Tree):
                name = str(child.data).removeprefix(prefix)
                if name not in names:
                    raise TypeError(f"{cls.__name__} has no field {name} for {child.data}")
                values[name] = _part(hints[name], child)
            else:
                positional.append(_value(child))
        open_fields = [n for n in names if n not in values]
        while positional:
            if not open_fields:
                raise TypeError(f"{rule} has more parts than {cls.__name__} has fields")
            name = open_fields.pop(0)
            if typing.get_origin(hints[name]) is list:  # the run of its items' kind
                [kind] = typing.get_args(hints[name])
                run = 0
                while run < len(positional) and isinstance(positional[run], kind):
                    run += 1
                values[name], positional = positional[:run], positional[run:]
            else:
                values[name] = positional.pop(0)
        for name in open_fields:  # an optional part that is absent
            if typing.get_origin(hints[name]) is list:
                values[name] = []
        return [(policy_field, cls(**values))]

    def __default__(self, data: str, children: _Kids, meta: Meta) -> Any:
        """A statement of one value (`select cpu idle`, `watchdog 5s`) needs no method of its
        own: its value, a name or an expression, goes to the Policy field named after it
        (`selects`, `watchdogs`). Nor does one whose node is registered with
        `ast.statement` (`counter ...`): see `_statement`."""
        if data in ast.STATEMENT_NODES:
            return self._statement(data, children, meta)
        if not data.endswith("_stmt"):
            return super().__default__(data, children, meta)
        [value] = children if len(children) == 1 else [None]
        if isinstance(value, Token) and value.type == "NAME":
            value = _name(value)
        if not isinstance(value, ast.Name | ast.Expr):
            raise TypeError(f"the statement rule {data} needs a Transformer method of its own")
        return [(data.removesuffix("_stmt") + "s", value)]

    @v_args(meta=True)
    def policy(self, meta: Meta, kids: _Kids) -> ast.Policy:
        name, *items = kids
        description = None
        if items and isinstance(items[0], Token) and items[0].type == "STRING":
            description = self._string(items.pop(0)).value
        policy = ast.Policy(_name(name), description, self.file, _meta_span(meta))
        for added in items:
            for field_name, item in added:
                getattr(policy, field_name).append(item)
        return policy

    def start(self, kids: _Kids) -> ast.Policy:
        return kids[0]


def _shorten(text: str, keep: int = 24, unit: str = "characters") -> str:
    """A literal for a message: very long ones are cut, with their length."""
    if len(text) <= 2 * keep:
        return text
    return f"{text[:keep]}...{text[-8:]} ({len(text.lstrip('-'))} {unit})"


def _name(tok: Token) -> ast.Name:
    return ast.Name(str(tok), _span_of(tok))


def _value(child: Any) -> Any:
    """A rule's child as a node field: a NAME token is an `ast.Name`, another token its
    text; expressions and the like are nodes already."""
    if isinstance(child, Token):
        return _name(child) if child.type == "NAME" else str(child)
    return child


def _part(hint: Any, tree: Tree) -> Any:
    """A sub-rule's tree as the value of the node field typed `hint` (see ast.statement)."""
    if hint is Span or Span in typing.get_args(hint):
        return _span_of(tree)
    values = [_value(c) for c in tree.children if c is not None]
    if typing.get_origin(hint) is list:
        return values
    if len(values) != 1:
        raise TypeError(f"the sub-rule {tree.data} has {len(values)} parts for one field")
    return values[0]


def _describe_expected(expected: set[str]) -> str:
    if {"DURATION", "INT", "NAME", "STRING"} <= expected:
        return "expected an expression (a value, a name, task.ATTRIBUTE or '(')"
    lark = _lark()
    words: list[str] = []
    for name in sorted(expected):
        if name in _TERMINAL_WORDS or operator_words(name):  # ADD_OP, MUL_OP: OPERATORS rows
            words.append(_TERMINAL_WORDS.get(name) or operator_words(name))
            continue
        try:
            term = lark.get_terminal(name)
        except KeyError:
            continue
        if isinstance(term.pattern, PatternStr):
            words.append(f"'{term.pattern.value}'")
        elif name.startswith("_") and term.pattern.value.endswith("\\b"):
            words.append(f"'{term.pattern.value[:-2]}'")  # a keyword: /word\b/
    words = sorted(set(words))
    if not words:
        return ""
    if len(words) > 16:  # more than what may follow a statement (every statement keyword)
        return "expected one of " + ", ".join(words[:16]) + ", ..."
    return "expected " + (words[0] if len(words) == 1 else "one of " + ", ".join(words))


def _token_text(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _word_start(text: str, pos: int) -> int:
    while pos > 0 and (text[pos - 1].isalnum() or text[pos - 1] in "._"):
        pos -= 1
    return pos


def _eof_hint(expected: str) -> str:
    """What to do when the file ends early: inside an expression, finish it first."""
    if "an expression" in expected:
        return "the file ends inside an expression: finish it, then close the scheduler with '}'"
    return "is a closing '}' missing?"


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        hint = None
        if ch == '"':
            code, msg, hint = (
                "E003",
                "unterminated string",
                "close the string with '\"' on the same line",
            )
        elif ch == "'":
            code, msg, hint = (
                "E002",
                'unexpected character "\'"',
                'strings use double quotes: "..."',
            )
        else:
            shown = (ch if ch.isprintable() else f"U+{ord(ch):04X}") if ch else "end of input"
            code, msg = "E002", f"unexpected character '{shown}'"
            hint = {
                "&": "write 'and'",
                "|": "write 'or'",
                "!": "write 'not' (and '!=' for 'not equal')",
                "=": "compare with '=='",
                ".": "numbers are integers; only durations have decimals (1.5ms)",
                ";": "statements end at the line break; no ';' is needed",
            }.get(ch)
        span = Span.point(exc.line, exc.column)
        word = _BAD_NUMBER.match(text, _word_start(text, exc.pos_in_stream))
        # Only a word the unexpected character is part of ("20xs"), not a good one that it
        # follows ("1ms;").
        if word and word.end() > exc.pos_in_stream:
            code, msg = "E002", f"'{word.group()}' is not a number or a duration"
            hint = "durations are a number and a unit: ns, us, ms or s (e.g. 10ms)"
            span = Span(
                exc.line,
                exc.column - (exc.pos_in_stream - word.start()),
                exc.line,
                exc.column - (exc.pos_in_stream - word.start()) + len(word.group()) - 1,
            )
        return Diagnostic.at(Severity.ERROR, code, msg, file, span, hint)
    if isinstance(exc, UnexpectedEOF):
        lines = _lines(text)
        span = Span.point(len(lines), len(lines[-1]) + 1)
        expected = _describe_expected(set(exc.expected))
        msg = "unexpected end of file" + (f"; {expected}" if expected else "")
        return Diagnostic.at(Severity.ERROR, "E004", msg, file, span, _eof_hint(expected))
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    expected = _describe_expected(set(exc.expected))
    if tok.type == "$END":
        lines = _lines(text)
        span = Span.point(len(lines), len(lines[-1]) + 1)
        msg = "unexpected end of file" + (f"; {expected}" if expected else "")
        return Diagnostic.at(Severity.ERROR, "E004", msg, file, span, _eof_hint(expected))
    msg = f"unexpected {_token_text(tok)}" + (f"; {expected}" if expected else "")
    hint = None
    if "RBRACE" in exc.expected and "'class'" in expected:
        hint = f"a statement starts with one of: {statement_words()}"
    if tok.type == "NAME" and str(tok) in {"elif", "if", "for", "while", "loop"}:
        hint = "the DSL has no control flow: describe classes, queues and their order instead"
    elif tok.type == "NAME" and str(tok) in {"else", "default"}:
        hint = "the default class is written: class NAME otherwise"
    elif tok.type == "NAME" and str(tok) in _UNITS and re.search(r"\d\s+$", text[: tok.start_pos]):
        hint = "no space between a number and its unit: 20ms"
    elif str(tok) == "." and re.search(r"\d$", text[: tok.start_pos]):
        hint = "numbers are integers; only durations have decimals (1.5ms)"
    elif str(tok) == "=" or tok.type == "EQUAL":
        hint = "compare with '=='"
    elif re.search(r"\bpreempts(\s+\w+(\s*,\s*\w+)*)?\s*$", text[: tok.start_pos]):
        hint = PREEMPTS_HINT
    elif "}" not in expected and "statement starts" in (hint or ""):
        hint = None
    return Diagnostic.at(Severity.ERROR, "E001", msg, file, _span_of(tok), hint)


def parse_policy(text: str, file: str) -> tuple[ast.Policy | None, list[Diagnostic]]:
    """Parse one policy. Returns the AST, or None with the syntax error(s) as diagnostics."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SOURCE_BYTES:
        return None, [
            Diagnostic(
                Severity.ERROR,
                "E007",
                f"policy is larger than {MAX_SOURCE_BYTES // 1024} KiB",
                file,
                1,
                1,
                hint="split it or remove generated content; policies are meant to be short",
            )
        ]
    if "\t" in text:
        text = text.replace("\t", " ")  # keep columns one char wide; lark counts a tab as 1 too
    if not re.sub(r"#[^\n]*", "", text).strip():
        return None, [
            Diagnostic(
                Severity.ERROR,
                "E004",
                "the file holds no policy",
                file,
                1,
                1,
                hint='a policy is: scheduler NAME "description" { ... }',
            )
        ]
    deep = _deep_brackets(text, file)
    if deep is not None:
        return None, [deep]
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        return None, [_syntax_diagnostic(exc, text, file)]
    except RecursionError:
        return None, [too_deep(file, Span.point(1, 1))]
    deep = _deep_tree(tree, file)
    if deep is not None:
        return None, [deep]
    try:
        return _ToAst(file).transform(tree), []
    except VisitError as exc:  # lark wraps what a transformer method raises
        if isinstance(exc.orig_exc, _ParseError):
            return None, [exc.orig_exc.diagnostic]
        if isinstance(exc.orig_exc, RecursionError):
            return None, [too_deep(file, _span_of(exc.obj))]
        raise exc.orig_exc from exc
    except RecursionError:
        return None, [too_deep(file, _span_of(tree.children[0]))]


def _lines(text: str) -> list[str]:
    """The lines as lark counts them (at '\\n' only, unlike str.splitlines), without the
    empty one after a final newline."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def _position(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of a string index, counted as lark counts them."""
    return text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)


def _deep_brackets(text: str, file: str) -> Diagnostic | None:
    """E009 at the first bracket nested deeper than MAX_NESTING (strings and comments are
    skipped), before the parser spends seconds on it."""
    depth = 0
    for m in _BRACKETS.finditer(text):
        ch = m.group()
        if ch in "([":
            depth += 1
            if depth > MAX_NESTING:
                return too_deep(file, Span.point(*_position(text, m.start())), brackets=True)
        elif ch in ")]":
            depth = max(0, depth - 1)
    return None


def _deep_tree(tree: Tree, file: str) -> Diagnostic | None:
    """E009 for a statement whose expression is more than MAX_NESTING operators deep (a
    chain like `a or b or ...` of hundreds of terms), found without recursion."""
    policy = tree.children[0]
    for stmt in policy.children:
        if not isinstance(stmt, Tree):
            continue
        stack: list[tuple[Tree, int]] = [(stmt, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_NESTING:
                return too_deep(file, _span_of(stmt))
            stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))
    return None
