"""The language's tables and limits: what the DSL has (types, task attributes, functions,
counter events, CPU selection modes, param types) and how much of it a policy may use.

Everything the front end accepts by name is looked up here, so most additions to the language
are a row in one of these tables (and, for the compiler, its lowering): see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

# The code of a policy file that cannot be read or is not UTF-8 (the pipeline's read stage).
READ_ERROR = "E000"

# ---- limits --------------------------------------------------------------------------------
# Enforced by the compiler so that the kernel verifier's limits are never the first to complain.
MAX_SOURCE_BYTES = 256 * 1024  # E007
# Ints are s64 and durations u64 ns in C: literals (E008) and constant values (E115) both
# stay below 2^63.
MAX_NUMBER = 2**63 - 1
# Brackets, or operators, nested deeper than this are refused before the tree is converted
# (E009): the conversion, sema and lowering recurse once or twice per level. Sema's own limit
# (MAX_EXPR_DEPTH, E309) is lower and more precise; this one keeps the recursion far from Python's.
MAX_NESTING = 128
MAX_CLASSES = 32
MAX_QUEUES = 16
MAX_PARAMS = 32
MAX_COUNTERS = 32
MAX_LIST_ITEMS = 32
MAX_EXPR_DEPTH = 64
MAX_TAGS = 16
MAX_CPU_ID = 1023
MAX_CPUS_PER_SET = MAX_CPU_ID + 1  # searched with an open-coded iterator: any size
MAX_WEIGHT = 100
MAX_WEIGHT_SUM = 1000
COMM_LEN = 15  # TASK_COMM_LEN - 1
MAX_GLOB_LEN = 32
MAX_CGROUP_DEPTH = 8
MAX_CGROUP_NAME = 63
SLICE_MIN_NS = 10_000
SLICE_MAX_NS = 1_000_000_000
LAG_MAX_NS = 10_000_000_000
WATCHDOG_MIN_NS = 100_000_000
WATCHDOG_MAX_NS = 30_000_000_000  # SCX_WATCHDOG_MAX_TIMEOUT
DEFAULT_SLICE_NS = 20_000_000  # SCX_SLICE_DFL
DEFAULT_LAG_NS = 20_000_000

# ---- names ---------------------------------------------------------------------------------
# A scheduler's name (E010); the repository and the agent use it for policy names too.
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,23}")
# Words of the expression language. Statement keywords (slice, lag, queue, ...) may name
# things, as in `param slice = 20ms`; these may not, or `when or or or` would parse (E012).
EXPRESSION_KEYWORDS = frozenset(
    {"and", "or", "not", "true", "false", "task", "in", "matches", "startswith", "under"}
)


# ---- types ---------------------------------------------------------------------------------
class Ty(Enum):
    INT = "int"
    DURATION = "duration"
    BOOL = "bool"
    STRING = "string"
    COMM = "comm"
    CGROUP = "cgroup path"
    ERROR = "<error>"

    def describe(self) -> str:
        return {
            Ty.INT: "a count (int)",
            Ty.DURATION: "a duration",
            Ty.BOOL: "a condition (bool)",
            Ty.STRING: "a string",
            Ty.COMM: "a task name (comm)",
            Ty.CGROUP: "a cgroup path",
            Ty.ERROR: "an invalid value",
        }[self]


PARAM_TYPES = {"duration": Ty.DURATION, "int": Ty.INT, "bool": Ty.BOOL}


# ---- expressions: task attributes and functions --------------------------------------------
@dataclass(frozen=True)
class AttrInfo:
    ty: Ty
    doc: str
    stat: bool = False  # a statistic the generated C tracks per task


# A new attribute is a row here and its C in compiler/lower.py (ExprLowerer._attr).
ATTRIBUTES: dict[tuple[str, ...], AttrInfo] = {
    ("comm",): AttrInfo(Ty.COMM, "the task's name (15 characters at most)"),
    ("parent", "comm"): AttrInfo(Ty.COMM, "the parent process's name"),
    ("process", "comm"): AttrInfo(
        Ty.COMM, "the name of the task's process (its main thread: a Renderer thread's 'firefox')"
    ),
    ("pid",): AttrInfo(Ty.INT, "the thread id"),
    ("tgid",): AttrInfo(Ty.INT, "the process id"),
    ("nice",): AttrInfo(Ty.INT, "the nice value, -20..19"),
    ("weight",): AttrInfo(Ty.INT, "the sched_ext weight, 1..10000 (100 at nice 0)"),
    ("uid",): AttrInfo(Ty.INT, "the effective user id"),
    ("cgroup",): AttrInfo(Ty.CGROUP, "the task's cgroup (v2) path"),
    ("kthread",): AttrInfo(Ty.BOOL, "true for kernel threads"),
    ("nr_cpus_allowed",): AttrInfo(Ty.INT, "how many CPUs the task may run on"),
    ("pinned",): AttrInfo(Ty.BOOL, "true when the task may run on one CPU only"),
    ("avg_runtime",): AttrInfo(
        Ty.DURATION, "average CPU time per run, from wakeup to sleep (moving average)", True
    ),
    ("wakeup_rate",): AttrInfo(Ty.INT, "wakeups per second (moving average)", True),
    ("since_ran",): AttrInfo(Ty.DURATION, "time since the task last stopped running", True),
}


@dataclass(frozen=True)
class Function:
    """A built-in function of numbers: all arguments of one kind (counts or durations), the
    result of that kind. `fold` is its value on constants; the C is schedc_NAME_s64 or
    schedc_NAME_u64 in codegen_templates/schedc_runtime.bpf.h."""

    arity: int
    fold: Callable[..., int]


FUNCTIONS: dict[str, Function] = {
    "min": Function(2, min),
    "max": Function(2, max),
    "clamp": Function(3, lambda value, low, high: min(max(value, low), high)),
}

# ---- expressions: arithmetic operators -----------------------------------------------------
# Ints are s64 and durations u64 ns in the generated C; the folds below compute what that C
# computes (tests/test_operators.py runs both and compares).
def _trunc_div(a: int, b: int) -> int | None:
    """C's signed division (towards zero; schedc_div_s64 gives 0 for a zero divisor)."""
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _count(v: int) -> int:
    """A count as a factor or divisor of a duration: negative counts are 0 (schedc_count_u64)."""
    return max(v, 0)


@dataclass(frozen=True)
class Operation:
    """What an operator does to one pair of operand types: the result's type, its value on
    constants, and its C, either a C operator ("+") or the name of a runtime helper in
    codegen_templates/schedc_runtime.bpf.h called with the two operands."""

    result: Ty
    fold: Callable[[int, int], int | None]
    c: str


@dataclass(frozen=True)
class Refusal:
    """An operand-type pair the operator refuses, with its diagnostic: `message` and `hint`
    may name the operands' kinds as {left} and {right}."""

    code: str
    message: str
    hint: str


@dataclass(frozen=True)
class Operator:
    """A binary arithmetic operator. `level` is its grammar terminal in dsl/policy.lark, which
    sets its precedence (ADD_OP binds looser than MUL_OP); `divides` makes a right operand
    that folds to 0 an error (E103). Operand pairs in neither `operations` nor `refusals` are
    E105, as are operands that are not numbers."""

    level: str
    operations: dict[tuple[Ty, Ty], Operation]
    refusals: dict[tuple[Ty, Ty], Refusal] = field(default_factory=dict)
    divides: bool = False


_I, _D = Ty.INT, Ty.DURATION
_MIXED_HINT = "give the count a unit (e.g. 5ms) or scale a duration by a count with '*'"

# A new operator is a row here and its symbol in its level's terminal in dsl/policy.lark (and
# a runtime helper when no C operator computes it): see docs/ARCHITECTURE.md.
OPERATORS: dict[str, Operator] = {
    "+": Operator(
        "ADD_OP",
        {
            (_I, _I): Operation(_I, lambda a, b: a + b, "+"),
            (_D, _D): Operation(_D, lambda a, b: a + b, "+"),
        },
        {
            (_D, _I): Refusal("E101", "unit mismatch: cannot add {right} to {left}", _MIXED_HINT),
            (_I, _D): Refusal("E101", "unit mismatch: cannot add {right} to {left}", _MIXED_HINT),
        },
    ),
    "-": Operator(
        "ADD_OP",
        {
            (_I, _I): Operation(_I, lambda a, b: a - b, "-"),
            # durations saturate at zero
            (_D, _D): Operation(_D, lambda a, b: max(a - b, 0), "schedc_sat_sub"),
        },
        {
            (_D, _I): Refusal(
                "E101", "unit mismatch: cannot subtract {right} from {left}", _MIXED_HINT
            ),
            (_I, _D): Refusal(
                "E101", "unit mismatch: cannot subtract {right} from {left}", _MIXED_HINT
            ),
        },
    ),
    "*": Operator(
        "MUL_OP",
        {
            (_I, _I): Operation(_I, lambda a, b: a * b, "*"),
            (_I, _D): Operation(_D, lambda a, b: _count(a) * b, "schedc_mul_count_dur"),
            (_D, _I): Operation(_D, lambda a, b: a * _count(b), "schedc_mul_dur_count"),
        },
        {
            (_D, _D): Refusal(
                "E102",
                "unit mismatch: a duration times a duration has no meaning here",
                "scale a duration by a count: slice * 2",
            ),
        },
    ),
    "/": Operator(
        "MUL_OP",
        {
            (_I, _I): Operation(_I, _trunc_div, "schedc_div_s64"),
            (_D, _I): Operation(
                _D, lambda a, b: a // _count(b) if _count(b) else 0, "schedc_div_dur_count"
            ),
            (_D, _D): Operation(_I, lambda a, b: a // b if b else 0, "schedc_div_dur_dur"),
        },
        {
            (_I, _D): Refusal(
                "E102",
                "unit mismatch: a count divided by a duration has no meaning here",
                "divide a duration by a count (slice / 2) or two durations (a / b gives a count)",
            ),
        },
        divides=True,
    ),
}


def operator_words(level: str) -> str:
    """The operators of one grammar level for a syntax error: "'+' or '-'"."""
    symbols = [f"'{s}'" for s, op in OPERATORS.items() if op.level == level]
    if len(symbols) < 2:
        return "".join(symbols)
    return ", ".join(symbols[:-1]) + " or " + symbols[-1]


# ---- statements ----------------------------------------------------------------------------
COUNTER_EVENTS = {
    "enqueue": "a task of the class was queued",
    "direct": "a waking task was dispatched straight to an idle CPU",
    "wakeup": "a task of the class woke up",
    "preempt": "a waking task preempted a lower class on its CPU",
    "aging": "a queue was served early because its head waited longer than the aging bound",
}
# Queue orders whose tasks always start in the queue's order (a waking task never skips the
# queue for an idle CPU); `strict` asks the same of the others.
STRICT_ORDERS = ("ordered", "deadline")
STRICT_NAMES = {"ordered": "an 'ordered by' queue", "deadline": "a deadline queue"}
# The compiler's latency defaults (docs/dsl.md 6.1) a policy may switch with `latency NAME =
# true|false`, each with its value when the policy does not, and what it does. Each becomes a
# read-only global of the object (`schedc_NAME`), which a loader may still set before load.
LATENCY_DEFAULTS: dict[str, tuple[bool, str]] = {
    "kick_idle": (True, "wake an idle CPU when a task is queued to a shared queue"),
    "wakeup_preempt": (True, "a waking task preempts a worse task on the CPU chosen for it"),
    "slice_scaling": (False, "the running task's slice shrinks while tasks of its rank wait"),
}
SELECT_MODES = {
    "idle": "the kernel's idle-CPU search (previous CPU if idle, then an idle core, then any "
    "idle CPU); a task that finds an idle CPU is dispatched to it directly",
    "previous": "stay on the previous CPU; dispatch directly only if that CPU is idle",
}


def format_cpu_list(cpus: Iterable[int]) -> str:
    """CPU numbers as "0-3,8" (the kernel's cpulist form; the DSL's `on cpus` spells sets so)."""
    out: list[str] = []
    ordered = sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)
