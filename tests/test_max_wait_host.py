"""`max_wait` executed: the generated enqueue and dispatch of an ordered queue with a per-task
wait bound, compiled for the host against fake kfuncs (tests/test_latency_host.py) and a fake
DSQ that keeps its tasks in key order and can be walked with the DSQ iterator.

What is checked (docs/dsl.md, "max_wait"): a task queued longer than the bound ago is moved to
the CPU before the better-keyed tasks ahead of it; one within the bound is not; the queue is
walked only when some task may be overdue; every walk destroys its iterator; the weighted
dispatch order takes overdue tasks the same way.
"""

from __future__ import annotations

from schedc.compiler.pipeline import translate
from tests.test_latency_host import (
    FAKES,
    MS,
    NO_DSQ_WALK,
    call,
    main,
    run_policy,
    translate_text,
)

# The fake move_to_local of test_latency_host does nothing; this one takes the fake DSQ's head.
_QUIET_CONSUME = "bool scx_bpf_dsq_move_to_local___new(u64 dsq) { return false; }\n"
_QUIET_INSERT_VTIME = """void scx_bpf_dsq_insert_vtime___new(struct task_struct *p, u64 dsq, u64 sl, u64 vtime, u64 fl)
{
	p->scx.dsq_vtime = vtime;
	printf("insert %d %s\\n", p->pid, dsq_name(dsq));
}
"""
DSQ_FAKES = r"""
static struct task_struct *fake_dsq[4][8];	/* each queue's tasks, in dispatch order */
static int fake_len[4];

static void dsq_remove(u64 dsq, int i)
{
	for (; i + 1 < fake_len[dsq]; i++)
		fake_dsq[dsq][i] = fake_dsq[dsq][i + 1];
	fake_len[dsq]--;
}
void scx_bpf_dsq_insert_vtime___new(struct task_struct *p, u64 dsq, u64 sl, u64 vtime, u64 fl)
{
	int i = fake_len[dsq];

	p->scx.dsq_vtime = vtime;
	while (i > 0 && fake_dsq[dsq][i - 1]->scx.dsq_vtime > vtime) {
		fake_dsq[dsq][i] = fake_dsq[dsq][i - 1];
		i--;
	}
	fake_dsq[dsq][i] = p;
	fake_len[dsq]++;
}
bool scx_bpf_dsq_move_to_local___new(u64 dsq)
{
	struct task_struct *p;

	if (dsq >= 4 || !fake_len[dsq])
		return false;
	p = fake_dsq[dsq][0];
	dsq_remove(dsq, 0);
	printf("head %d\n", p->pid);
	return true;
}
struct fake_iter { u64 dsq; int pos; };
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq, u64 flags)
{
	struct fake_iter *f = (struct fake_iter *)it;

	f->dsq = dsq;
	f->pos = 0;
	printf("walk q%d\n", (int)dsq);
	return 0;
}
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it)
{
	struct fake_iter *f = (struct fake_iter *)it;

	return f->pos < fake_len[f->dsq] ? fake_dsq[f->dsq][f->pos++] : 0;
}
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) { printf("walk end\n"); }
bool scx_bpf_dsq_move___new(struct bpf_iter_scx_dsq *it, struct task_struct *p, u64 dsq, u64 fl)
{
	struct fake_iter *f = (struct fake_iter *)it;

	if (f->pos < 1 || fake_dsq[f->dsq][f->pos - 1] != p || dsq != SCX_DSQ_LOCAL)
		return false;	/* only the task the iterator has just given, to the local DSQ */
	dsq_remove(f->dsq, --f->pos);
	printf("overdue %d\n", p->pid);
	return true;
}
"""

# Key: 100ms per nice level, so a nice 19 task sorts behind every nice 0 task queued within 1.9s.
ORDERED = """scheduler t "an ordered queue with a wait bound" {
  class all otherwise
  queue q for all ordered by task.nice * 100ms ascending lag 5s max_wait 200ms
}
"""
WEIGHTED = """scheduler t "weighted, one queue with a wait bound" {
  class hi when task.nice < 0
  class lo otherwise
  queue hq for hi fifo
  queue lq for lo ordered by task.nice * 100ms ascending lag 5s max_wait 200ms
  dispatch weighted hq: 1, lq: 1
}
"""


def fakes() -> str:
    assert _QUIET_CONSUME in FAKES and _QUIET_INSERT_VTIME in FAKES and NO_DSQ_WALK in FAKES
    quiet = FAKES.replace(_QUIET_CONSUME, "").replace(_QUIET_INSERT_VTIME, "")
    return quiet.replace(NO_DSQ_WALK, "") + DSQ_FAKES


def at(ms: int) -> str:
    return f"\tfake_now = 1000000000ULL + {ms * MS}ULL;\n"


def served(log: list[str]) -> list[str]:
    keep = ("walk", "head", "overdue", "destroy", "--")
    return [line for line in log if line.startswith(keep)]


def test_an_overdue_task_is_served_before_better_keys_and_a_waiting_one_is_not(
    toolchain, tmp_path
):
    body = (
        "\tfake_task_cpu = 0;\n"
        + at(0) + call("enqueue", "task(1, 19)", "0")  # bad key: 1.9s
        + at(100) + call("enqueue", "task(2, 0)", "0")
        + at(150) + call("dispatch", "0", "0")  # 1 waited 150ms: within the bound, head (2) runs
        + '\tprintf("--\\n");\n'
        + at(160) + call("enqueue", "task(3, 0)", "0")
        + at(250) + call("dispatch", "0", "0")  # 1 waited 250ms: overdue, before 3
        + '\tprintf("--\\n");\n'
        + at(255) + call("enqueue", "task(4, 19)", "0")
        + at(260) + call("dispatch", "0", "0")  # a walk finds nothing overdue: head 3
        + '\tprintf("--\\n");\n'
        + at(300) + call("dispatch", "0", "0")  # the oldest (3 at 160ms) is within it: no walk
    )
    log = served(run_policy(toolchain, tmp_path, ORDERED, main(body), fakes=fakes()))
    assert log == [
        "walk q0", "walk end", "destroy", "head 2", "--",
        "walk q0", "overdue 1", "walk end", "destroy", "--",
        "walk q0", "walk end", "destroy", "head 3", "--",
        "head 4",
    ]


def test_weighted_dispatch_takes_an_overdue_task_first(toolchain, tmp_path):
    body = (
        "\tfake_task_cpu = 0;\n"
        + at(0) + call("enqueue", "task(1, 19)", "0")
        + at(250) + call("enqueue", "task(2, 0)", "0")
        + at(300) + call("dispatch", "0", "0")  # hq is empty; lq's task 1 waited 300ms
        + call("dispatch", "0", "0")  # 2 waited 50ms: the walk finds none overdue
    )
    log = served(run_policy(toolchain, tmp_path, WEIGHTED, main(body), fakes=fakes()))
    assert log == [
        "walk q1", "overdue 1", "walk end", "destroy",
        "walk q1", "walk end", "destroy", "head 2",
    ]


def test_the_bound_may_be_a_param_and_a_fifo_queue_gets_no_walk(tmp_path):
    with_param = translate_text(
        tmp_path,
        'scheduler t "p" {\n  param w = 200ms\n  class all otherwise\n'
        "  queue q for all vtime max_wait w * 2\n}\n",
    )
    assert "schedc_take_overdue(0, schedc_mul_dur_count(param_w, 2LL), now, cpu)" in with_param
    fifo = tmp_path / "f.sched"
    fifo.write_text('scheduler t "f" {\n  class all otherwise\n  queue q for all fifo max_wait 100ms\n}\n')
    result = translate(fifo)
    assert [d.code for d in result.diagnostics] == ["W011"]
    assert "bpf_iter_scx_dsq" not in result.c_text and "queued_at" not in result.c_text
