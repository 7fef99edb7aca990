"""The generated dispatch and class conditions of strict-priority policies, executed on the host.

The generated C is compiled for the host (as in tests/test_matchers_host.py) with host stand-ins
for the few kfuncs ops.dispatch calls: a DSQ is a count of queued tasks, consuming takes one and
records which queue it came from. What is checked is what the kernel then does with the answer:
sched_ext calls ops.dispatch on a CPU whose task used up its slice *before* it queues that task
again (kernel/sched/ext.c, balance_one), and keeps running it if ops.dispatch leaves it a slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schedc.agent import classify
from schedc.agent.classify import HARNESS_PRELUDE
from schedc.compiler.pipeline import translate

ROOT = Path(__file__).resolve().parent.parent
MS = 1_000_000

CLOCK_STUB = "static u64 bpf_ktime_get_ns(void) { return 0; }"
assert CLOCK_STUB in HARNESS_PRELUDE
STORAGE_STUB = """static void *bpf_task_storage_get(void *map, struct task_struct *p, void *v, u64 flags)
{
	return 0;
}"""
assert STORAGE_STUB in HARNESS_PRELUDE
PRELUDE = HARNESS_PRELUDE.replace(
    CLOCK_STUB, "static u64 fake_now;\nstatic u64 bpf_ktime_get_ns(void) { return fake_now; }"
).replace(
    STORAGE_STUB,
    """static void *(*fake_storage)(struct task_struct *p);	/* NULL: tasks have no storage */
static void *bpf_task_storage_get(void *map, struct task_struct *p, void *v, u64 flags)
{
	return fake_storage ? fake_storage(p) : 0;
}""",
)

FAKE_DSQS = r"""
static s32 fake_queued[8];
static u64 fake_times[8][16];	/* when each queued task was queued, head first */
static struct task_struct fake_tasks[8];	/* the head of each DSQ, as the iterator sees it */
static int consumed;
static u64 fake_iter_q;

s32 scx_bpf_dsq_nr_queued(u64 id) { return id < 8 ? fake_queued[id] : 0; }
bool scx_bpf_consume___old(u64 id)
{
	if (id >= 8 || fake_queued[id] <= 0)
		return false;
	fake_queued[id]--;
	memcpy(fake_times[id], fake_times[id] + 1, sizeof(fake_times[id]) - sizeof(u64));
	consumed = (int)id;
	return true;
}
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags)
{
	fake_iter_q = dsq_id;
	return 0;
}
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it)
{
	/* the head only: nothing here walks further */
	return fake_iter_q < 8 && fake_queued[fake_iter_q] > 0 ? &fake_tasks[fake_iter_q] : 0;
}
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) {}
"""


def build_and_run(toolchain, tmp_path: Path, c_text: str, main: str) -> str:
    """Compile the generated C with PRELUDE (the fake clock) before it and `main` after it."""
    return classify.build_and_run(toolchain, tmp_path, c_text, main, prelude=PRELUDE)


@dataclass(frozen=True)
class Case:
    """One call of ops.dispatch on CPU 1. `prev` is None when the CPU ran no sched_ext task;
    else (still runnable, the dispatch rank its class had when it started, its slice then)."""

    prev: tuple[bool, int, int] | None
    queued: tuple[int, ...]  # tasks in DSQ 0, 1, ...
    waited: int = 0  # ns the lowest queue's head has waited (the aging clock)


def run_dispatch(toolchain, tmp_path: Path, c_text: str, func: str, cases: list[Case]) -> list:
    """(queue consumed or None, prev's slice after the call) for each case."""
    rows = []
    for c in cases:
        has, runnable, rank, slice_ = (0, 0, 0, 0)
        if c.prev is not None:
            has, (runnable, rank, slice_) = 1, (int(c.prev[0]), c.prev[1], c.prev[2])
        queued = ", ".join(str(n) for n in c.queued)
        rows.append(
            f"\t{{ {has}, {runnable}, {rank}, {slice_}ULL, {{ {queued} }}, {c.waited}ULL }},"
        )
    main = f"""{FAKE_DSQS}
struct row {{ int has_prev, runnable, rank; u64 slice; s32 queued[8]; u64 waited; }};
static const struct row rows[] = {{
{chr(10).join(rows)}
}};

int main(void)
{{
\tfor (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {{
\t\tconst struct row *r = &rows[i];
\t\tstatic struct task_struct prev;
\t\tunsigned long long ctx[2];

\t\tmemset(&prev, 0, sizeof(prev));
\t\tmemset(schedc_cpus, 0, sizeof(schedc_cpus));
\t\tmemset(schedc_waiting_since, 0, sizeof(schedc_waiting_since));
\t\tprev.scx.flags = r->runnable ? SCX_TASK_QUEUED : 0;
\t\tprev.scx.slice = 0;	/* used up: that is why the kernel asks */
\t\tschedc_cpus[1].rank = r->rank;
\t\tschedc_cpus[1].slice = r->slice;
\t\tmemcpy(fake_queued, r->queued, sizeof(fake_queued));
\t\tfake_now = 10000000000ULL;
\t\tfor (unsigned q = 0; q < SCHEDC_NR_QUEUES; q++)
\t\t\tschedc_waiting_since[q] = fake_now - r->waited;
\t\tconsumed = -1;
\t\tctx[0] = 1;
\t\tctx[1] = r->has_prev ? (unsigned long long)&prev : 0;
\t\t{func}(ctx);
\t\tprintf("%d %llu\\n", consumed, (unsigned long long)prev.scx.slice);
\t}}
\treturn 0;
}}
"""
    out = build_and_run(toolchain, tmp_path, c_text, main)
    results = []
    for line in out.splitlines():
        q, s = line.split()
        results.append((None if q == "-1" else int(q), int(s)))
    return results


def test_ljf_long_task_keeps_its_cpu_while_only_short_jobs_wait(toolchain, tmp_path):
    result = translate(ROOT / "examples" / "ljf.sched")
    assert result.ok, result.diagnostics
    long_slice = 40 * MS  # slice long = slice * 2
    cases = [
        # The long job's slice ran out, long_q is empty, short jobs wait: it runs on, with
        # its class's slice again (before the fix a short job took the CPU and the long job
        # waited in long_q for the next CPU to free up).
        Case(prev=(True, 1, long_slice), queued=(0, 5)),
        # Another long job waits: that one runs (the queue's order decides among peers).
        Case(prev=(True, 1, long_slice), queued=(1, 5)),
        # A short job's slice ran out: the next short job runs (FIFO round robin).
        Case(prev=(True, 2, 20 * MS), queued=(0, 5)),
        # No task to go on with (it slept, or the CPU was idle): short_q is served.
        Case(prev=(False, 1, long_slice), queued=(0, 5)),
        Case(prev=None, queued=(0, 5)),
        # Aging still bounds short_q's wait, even against a long job that could run on.
        Case(prev=(True, 1, long_slice), queued=(0, 5), waited=600 * MS),
        # A recorded slice of 0 (never seen by running()) gets the kernel's default slice.
        Case(prev=(True, 1, 0), queued=(0, 5)),
    ]
    got = run_dispatch(toolchain, tmp_path, result.c_text, "ljf_dispatch", cases)
    assert got == [
        (None, long_slice),
        (0, 0),
        (1, 0),
        (1, 0),
        (1, 0),
        (1, 0),
        (None, 20 * MS),  # SCX_SLICE_DFL
    ]


def test_aging_serves_every_overdue_task_not_one_per_bound(toolchain, tmp_path):
    """Aging bounds each task's wait. After an aged take, the queue's "waiting since" is its new
    head's enqueue time, so a queue whose next tasks are overdue too is served until its head
    is within the bound. Before, it restarted at *now*: under ljf with CPU hogs in long_q, the
    short queue got one task per 500ms bound and cyclictest's run did not finish in 44 s."""
    result = translate(ROOT / "examples" / "ljf.sched")
    assert result.ok, result.diagnostics
    main = f"""{FAKE_DSQS}
static struct schedc_task fake_tctx[8];
static void *head_storage(struct task_struct *p)
{{
\tint q = (int)(p - fake_tasks);

\tfake_tctx[q].queued_at = fake_times[q][0];
\treturn &fake_tctx[q];
}}

int main(void)
{{
\t/* ms before the first call at which short_q's five tasks were queued, head first */
\tstatic const u64 short_ago[] = {{ 900, 800, 700, 100, 50 }};
\tunsigned long long ctx[2] = {{ 1, 0 }};

\tfake_storage = head_storage;
\tfake_now = 10000000000ULL;
\tfake_queued[0] = 3;	/* long_q: CPU hogs, always first without aging */
\tfake_queued[1] = 5;
\tfor (unsigned i = 0; i < 5; i++)
\t\tfake_times[1][i] = fake_now - short_ago[i] * 1000000ULL;
\tschedc_waiting_since[1] = fake_times[1][0];	/* set when the first task was queued */
\tfor (unsigned i = 0; i < 6; i++) {{
\t\tconsumed = -1;
\t\tljf_dispatch(ctx);
\t\tprintf("%d %llu\\n", consumed, (fake_now - schedc_waiting_since[1]) / 1000000ULL);
\t\tfake_now += 1000000ULL;	/* 1ms between dispatches */
\t}}
\treturn 0;
}}
"""
    out = build_and_run(toolchain, tmp_path, result.c_text, main)
    got = [tuple(int(x) for x in line.split()) for line in out.splitlines()]
    # (queue served, how long short_q's head has waited after the call, ms)
    assert got == [
        (1, 800),  # the 900ms task is overdue (aging 500ms): served; its successor waited 800
        (1, 701),  # overdue too: served at once, not half a second later
        (1, 102),
        (0, 103),  # short_q's head is within the bound: long_q first again
        (0, 104),
        (0, 105),
    ]


THREE = """scheduler three "Three ranks" {
  class hi when task.nice < 0
  class mid when task.nice == 0
  class lo otherwise
  queue hi_q for hi fifo
  queue mid_q for mid vtime lag 10ms
  queue lo_q for lo fifo
  dispatch mid_q then hi_q then lo_q, aging 100ms
  slice hi = 5ms, mid = 10ms, lo = 30ms
}
"""


def test_the_running_task_yields_only_to_queues_ranked_at_or_before_its_own(toolchain, tmp_path):
    src = tmp_path / "three.sched"
    src.write_text(THREE)
    result = translate(src)
    assert result.ok, result.diagnostics
    # DSQ ids follow the queue statements (hi_q 0, mid_q 1, lo_q 2); ranks the dispatch order
    # (mid_q 1, hi_q 2, lo_q 3).
    cases = [
        Case(prev=(True, 2, 5 * MS), queued=(0, 0, 4)),  # hi task, only lo waits: runs on
        Case(prev=(True, 2, 5 * MS), queued=(3, 0, 4)),  # a peer in hi_q waits: it goes
        Case(prev=(True, 2, 5 * MS), queued=(3, 1, 4)),  # mid_q ranks first: it goes
        Case(prev=(True, 1, 10 * MS), queued=(3, 0, 4)),  # mid task runs on over hi and lo
        Case(prev=(True, 3, 30 * MS), queued=(0, 0, 4)),  # lo task: its peer goes
        Case(prev=(True, 3, 30 * MS), queued=(0, 0, 0)),  # nothing queued: nothing consumed
        Case(prev=(True, 2, 5 * MS), queued=(0, 0, 4), waited=200 * MS),  # lo aged: it goes
    ]
    got = run_dispatch(toolchain, tmp_path, result.c_text, "three_dispatch", cases)
    assert got == [
        (None, 5 * MS),
        (0, 0),
        (1, 0),
        (None, 10 * MS),
        (2, 0),
        (None, 0),  # the kernel keeps running it (no SCX_OPS_ENQ_LAST)
        (2, 0),
    ]


LJF_TASKS = [
    # (comm, avg_runtime, burst so far, class expected: 0 long, 1 short)
    ("cc1", 0, 0, 1),
    ("cc1", 0, 150 * MS, 1),  # a whole short compile job, not slept yet
    ("cc1", 600 * MS, 0, 1),  # a process whose start-up before its first sleep took long
    ("cc1", 600 * MS, 150 * MS, 1),
    ("ffmpeg", 0, 0, 0),  # named long jobs are long from their first wake-up
    ("ctest", 0, 0, 0),
    ("ffmpeg2", 0, 0, 1),
    ("make", 3000 * MS, 0, 0),  # runs for seconds between sleeps
    ("make", 0, 2500 * MS, 0),  # a CPU hog is long once its burst is past long_run
]


def test_ljf_classes_tell_short_compile_jobs_from_long_jobs(toolchain, tmp_path):
    """The example's scenario (8 cc1 jobs of 150 ms, one ffmpeg of 1 s): with `avg_runtime >
    10ms` every cc1 job was "long" after its first slice, so both ran in long_q's order and the
    dispatch order did not matter. This would have caught it."""
    result = translate(ROOT / "examples" / "ljf.sched")
    assert result.ok, result.diagnostics
    rows = "\n".join(
        f'\t{{ "{comm}", {avg}ULL, {burst}ULL }},' for comm, avg, burst, _ in LJF_TASKS
    )
    main = f"""
struct row {{ const char *comm; u64 avg, burst; }};
static const struct row rows[] = {{
{rows}
}};

int main(void)
{{
\tfor (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {{
\t\tstatic struct task_struct task;
\t\tstruct schedc_task tctx = {{}};

\t\tmemset(&task, 0, sizeof(task));
\t\tstrncpy(task.comm, rows[i].comm, 15);
\t\ttctx.avg_runtime = rows[i].avg;
\t\ttctx.burst = rows[i].burst;
\t\tprintf("%u\\n", schedc_classify(&task, &tctx, 0));
\t}}
\treturn 0;
}}
"""
    out = build_and_run(toolchain, tmp_path, result.c_text, main)
    got = [int(x) for x in out.split()]
    assert got == [want for *_, want in LJF_TASKS]


SHARES = """scheduler shared "Foreground 3, background 1 of the CPU time" {
  class bg when task.nice > 0
  class fg otherwise
  queue fg_q for fg fifo
  queue bg_q for bg fifo
  dispatch shares fg_q: 3, bg_q: 1
}
"""


def test_shares_serve_the_queue_that_used_least_of_its_share(toolchain, tmp_path):
    """`dispatch shares`: dispatch compares each queue's CPU time divided by its share, the
    time prev has run since it was last charged included; tick() and stopping() charge it."""
    src = tmp_path / "shared.sched"
    src.write_text(SHARES)
    result = translate(src)
    assert result.ok, result.diagnostics
    # (use of fg_q, use of bg_q, tasks queued in each, prev: None or (its queue, ns it ran))
    cases = [
        (300, 100, (1, 1), None),  # bg_q has used less for its share: bg_q
        (100, 300, (1, 1), None),  # fg_q has: fg_q
        (100, 300, (0, 1), None),  # fg_q has no work: bg_q
        (0, 5 * 10**8, (0, 1), (0, 3 * MS)),  # prev of fg_q: 3ms at share 3 is 1e8, < 5e8
        (6 * 10**8, 5 * 10**8, (0, 1), (0, 3 * MS)),  # fg_q has used more: bg_q's task
        (4 * 10**8, 5 * 10**8, (0, 1), (0, 3 * MS)),  # 4e8 + 1e8 <= 5e8: prev goes on
        (0, 0, (0, 0), (1, 3 * MS)),  # nothing queued: prev goes on
    ]
    rows = []
    for fg, bg, queued, prev in cases:
        q, ran = prev if prev is not None else (-1, 0)
        rows.append(f"\t{{ {fg}ULL, {bg}ULL, {{ {queued[0]}, {queued[1]} }}, {q}, {ran}ULL }},")
    main = f"""{FAKE_DSQS}
s32 scx_bpf_task_cpu(const struct task_struct *p) {{ return 1; }}
struct row {{ u64 fg, bg; s32 queued[2]; int prev_queue; u64 ran; }};
static const struct row rows[] = {{
{chr(10).join(rows)}
}};

int main(void)
{{
\tfor (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {{
\t\tconst struct row *r = &rows[i];
\t\tstatic struct task_struct prev;
\t\tunsigned long long ctx[2];

\t\tmemset(&prev, 0, sizeof(prev));
\t\tmemset(schedc_cpus, 0, sizeof(schedc_cpus));
\t\tmemset(fake_queued, 0, sizeof(fake_queued));
\t\tfake_now = 10000000000ULL;
\t\tmemset(schedc_shares, 0, sizeof(schedc_shares));
\t\tschedc_shares[0].used = r->fg;
\t\tschedc_shares[1].used = r->bg;
\t\tfake_queued[0] = r->queued[0];
\t\tfake_queued[1] = r->queued[1];
\t\tif (r->prev_queue >= 0) {{
\t\t\tprev.scx.flags = SCX_TASK_QUEUED;
\t\t\tschedc_cpus[1].queue = r->prev_queue + 1;
\t\t\tschedc_cpus[1].slice = 20000000;
\t\t\tschedc_cpus[1].charged = fake_now - r->ran;
\t\t\tschedc_shares[r->prev_queue].running = 1;
\t\t}}
\t\tconsumed = -1;
\t\tctx[0] = 1;
\t\tctx[1] = r->prev_queue >= 0 ? (unsigned long long)&prev : 0;
\t\tshared_dispatch(ctx);
\t\tprintf("%d %llu %llu\\n", consumed, (unsigned long long)prev.scx.slice,
\t\t       schedc_share_clock);
\t\tschedc_share_clock = 0;
\t}}
\t/* stopping() charges the time run to the queue, divided by its share */
\tmemset(schedc_shares, 0, sizeof(schedc_shares));
\tfor (int q = 0; q < 2; q++) {{
\t\tstatic struct task_struct t;
\t\tunsigned long long ctx[2] = {{ (unsigned long long)&t, 0 }};

\t\tschedc_cpus[1].queue = q + 1;
\t\tschedc_cpus[1].charged = fake_now - 6 * 1000000ULL;
\t\tschedc_shares[q].running = 1;
\t\tfake_now += 1000000ULL;
\t\tshared_tick(ctx);	/* charges the 7ms since then; stopping 1ms more */
\t\tfake_now += 1000000ULL;
\t\tshared_stopping(ctx);
\t}}
\tprintf("used %llu %llu running %lld %lld\\n", schedc_shares[0].used, schedc_shares[1].used,
\t       schedc_shares[0].running, schedc_shares[1].running);
\treturn 0;
}}
"""
    out = build_and_run(toolchain, tmp_path, result.c_text, main).splitlines()
    # consumed queue, prev's new slice, the share clock (the least use among queues with work,
    # running or queued)
    assert out[:-1] == [
        "1 0 100",
        "0 0 100",
        "1 0 300",  # fg_q has no work: its lower use does not hold the clock back
        f"-1 {20 * MS} 0",  # fg_q runs prev: it has work
        f"1 0 {5 * 10**8}",
        f"-1 {20 * MS} {4 * 10**8}",
        f"-1 {20 * MS} 0",
    ]
    fg, bg = 7 * MS * 100 // 3 + MS * 100 // 3, 7 * MS * 100 + MS * 100
    assert out[-1] == f"used {fg} {bg} running 0 0"
