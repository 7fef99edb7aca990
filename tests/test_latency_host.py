"""The compiler's wake-up latency defaults, executed: the generated callbacks of small policies
are compiled for the host (the exact C that goes into the BPF object, host target) against
fake kfuncs that log what the scheduler asks the kernel to do — kick a CPU, insert a task into
a queue — and the tests drive select_cpu, enqueue, running, tick and stopping as the kernel
would, then check the log.

What is checked (docs/dsl.md, "What the compiler does for you"): a queued task wakes an idle
CPU; a waking task preempts a lower-ranked class or a worse key, never a FIFO peer; an ordered
queue's task is not dispatched straight to an idle CPU on wake-up (strict start order); the
running slice shrinks while tasks wait; a loader can turn each default off before load.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from schedc.compiler.pipeline import translate
from schedc.compiler.toolchain import runtime_dir

PRELUDE = r"""
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
int printf(const char *fmt, ...);
void *memcpy(void *dst, const void *src, unsigned long n);
void *memset(void *dst, int c, unsigned long n);
char *strncpy(char *dst, const char *src, unsigned long n);

#define __BPF_HELPERS__
#define SEC(name)
#define __always_inline inline __attribute__((always_inline))
#define __weak __attribute__((weak))
#define __ksym
#define __uint(name, val) int name
#define __type(name, val) val *name

static u64 fake_now;
static unsigned long long fake_storage[8][16];	/* task-local storage of tasks 0..7 */
static u64 fake_counter;

static long bpf_probe_read_kernel(void *dst, u32 size, const void *src)
{
	memcpy(dst, src, size);
	return 0;
}
static long bpf_probe_read_kernel_str(void *dst, u32 size, const void *src) { return 0; }
static void *bpf_task_storage_get(void *map, struct task_struct *p, void *v, u64 flags)
{
	return fake_storage[p->pid & 7];
}
static void *bpf_map_lookup_elem(void *map, const void *key) { return &fake_counter; }
static u64 bpf_ktime_get_ns(void) { return fake_now; }
"""

# A DSQ walk (aging looks at a queue's new head) sees no task: the queue restarts at now.
# tests/test_max_wait_host.py replaces it with a walk over fake queued tasks.
NO_DSQ_WALK = r"""int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq, u64 flags) { return 0; }
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) { return 0; }
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) {}
"""

FAKES = r"""
static int fake_task_cpu, fake_idle_cpu = -1, fake_select_cpu, fake_select_idle;
static int fake_queued[16];

static const char *kick_name(u64 flags)
{
	return flags == SCX_KICK_IDLE ? "idle" : flags == SCX_KICK_PREEMPT ? "preempt" : "other";
}
void scx_bpf_kick_cpu(s32 cpu, u64 flags) { printf("kick %d %s\n", cpu, kick_name(flags)); }
s32 scx_bpf_task_cpu(const struct task_struct *p) { return fake_task_cpu; }
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus, u64 flags) { return fake_idle_cpu; }
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev, u64 wake_flags, bool *is_idle)
{
	*is_idle = fake_select_idle;
	return fake_select_cpu;
}
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) { return fake_select_idle; }
s32 scx_bpf_dsq_nr_queued(u64 dsq) { return dsq < 16 ? fake_queued[dsq] : 0; }
u32 scx_bpf_nr_cpu_ids(void) { return 2; }
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *m) { return true; }
s32 scx_bpf_create_dsq(u64 dsq, s32 node) { return 0; }
int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)
{
	int *st = (int *)it;	/* 8 opaque bytes: the next value, the end */

	st[0] = start;
	st[1] = end;
	return 0;
}
int *bpf_iter_num_next(struct bpf_iter_num *it)
{
	int *st = (int *)it;
	static int value;

	if (st[0] >= st[1])
		return 0;
	value = st[0]++;
	return &value;
}
void bpf_iter_num_destroy(struct bpf_iter_num *it) { printf("destroy\n"); }
""" + NO_DSQ_WALK + r"""static const char *dsq_name(u64 dsq)
{
	static char buf[24];

	if (dsq == SCX_DSQ_LOCAL)
		return "local";
	if (dsq == SCX_DSQ_GLOBAL)
		return "global";
	buf[0] = 'q';
	buf[1] = '0' + (char)dsq;
	buf[2] = 0;
	return buf;
}
void scx_bpf_dsq_insert___new(struct task_struct *p, u64 dsq, u64 slice, u64 flags)
{
	printf("insert %d %s%s\n", p->pid, dsq_name(dsq), flags & SCX_ENQ_PREEMPT ? " preempt" : "");
}
void scx_bpf_dsq_insert_vtime___new(struct task_struct *p, u64 dsq, u64 sl, u64 vtime, u64 fl)
{
	p->scx.dsq_vtime = vtime;
	printf("insert %d %s\n", p->pid, dsq_name(dsq));
}
bool scx_bpf_dsq_move_to_local___new(u64 dsq) { return false; }

static struct task_struct tasks[8];

static struct task_struct *task(int pid, int nice)
{
	struct task_struct *p = &tasks[pid & 7];

	p->pid = pid;
	p->static_prio = 120 + nice;
	p->scx.weight = 100;
	p->nr_cpus_allowed = 2;
	return p;
}
"""

MS = 1_000_000


def with_latency(policy: str, switch: str) -> str:
    """The policy with a `latency` statement before its closing brace."""
    body, brace, rest = policy.rpartition("}")
    return f"{body}  latency {switch}\n{brace}{rest}"


def run_policy(toolchain, tmp_path: Path, policy: str, main: str,
               edit: tuple[str, str] | None = None, fakes: str = FAKES,
               edits: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """Compile `policy` (DSL) to C, build it for the host with the fakes and `main`, run it and
    return its log lines. `edit` (and each of `edits`) replaces text of the generated C, as a
    loader setting a read-only global before load does; `fakes` replaces the fake kfuncs."""
    src = tmp_path / "t.sched"
    src.write_text(policy)
    result = translate(src)
    assert result.ok, result.diagnostics
    c_text = result.c_text
    for old, new in ((edit,) if edit is not None else ()) + edits:
        assert old in c_text
        c_text = c_text.replace(old, new)
    gen = tmp_path / "policy.bpf.c"
    gen.write_text(c_text)
    harness = tmp_path / "harness.c"
    harness.write_text(PRELUDE + f'#include "{gen}"\n' + fakes + main)
    return build_and_run(toolchain, harness).splitlines()


def build_and_run(toolchain, source: Path, timeout: float = 60) -> str:
    """A host program that includes the runtime header (and vmlinux.h), built with the
    toolchain's clang beside `source` and run: its standard output."""
    exe = source.with_suffix("")
    proc = subprocess.run(
        [toolchain.clang, "-O1", "-w", "-I", str(runtime_dir()), "-I", str(toolchain.vmlinux_dir),
         str(source), "-o", str(exe), "-Wl,--unresolved-symbols=ignore-all"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=timeout)
    return out.stdout


FIFO = 'scheduler t "one fifo queue" {\n  class all otherwise\n  queue q for all fifo\n}\n'
VTIME = ('scheduler t "one vtime queue" {\n  class all otherwise\n'
         "  queue q for all vtime lag 20ms\n  slice all = 20ms\n}\n")
RANKED = """scheduler t "two ranked fifo queues" {
  class hi when task.nice < 0
  class lo otherwise
  queue hq for hi fifo
  queue lq for lo fifo
  dispatch hq then lq, aging 100ms
}
"""
ORDERED = """scheduler t "an ordered queue and a fifo one" {
  class long when task.nice > 0
  class short otherwise
  queue long_q for long ordered by task.avg_runtime descending lag 100ms
  queue short_q for short fifo
  dispatch long_q then short_q, aging 500ms
  select cpu idle
}
"""


def main(body: str) -> str:
    return "int main(void)\n{\n\tunsigned long long ctx[3] = {};\n\n" + body + "\treturn 0;\n}\n"


def call(func: str, *args: str) -> str:
    lines = "".join(f"\tctx[{i}] = (unsigned long long)({a});\n" for i, a in enumerate(args))
    return lines + f"\tt_{func}(ctx);\n"


def test_a_queued_task_wakes_an_idle_cpu(toolchain, tmp_path):
    body = (
        "\tfake_task_cpu = 0;\n\tfake_idle_cpu = 1;\n"
        + call("enqueue", "task(1, 0)", "0")
        + '\tprintf("--\\n");\n\tfake_idle_cpu = -1;\n'
        + call("enqueue", "task(2, 0)", "0")
    )
    log = run_policy(toolchain, tmp_path, FIFO, main(body))
    assert log == ["insert 1 q0", "kick 0 idle", "kick 1 idle", "--", "insert 2 q0", "kick 0 idle"]
    off = run_policy(toolchain, tmp_path, FIFO, main(body),
                     edit=("schedc_kick_idle = true", "schedc_kick_idle = false"))
    assert off == ["insert 1 q0", "--", "insert 2 q0"]
    # The policy's own switch does what the loader's does.
    dsl_off = run_policy(toolchain, tmp_path, with_latency(FIFO, "kick_idle = false"), main(body))
    assert dsl_off == off


def test_a_waking_task_with_a_much_smaller_vtime_preempts(toolchain, tmp_path):
    hog = "task(1, 0)"
    body = (
        "\tfake_task_cpu = 0;\n\tfake_now = 1000000000ULL;\n"
        + call("enqueue", hog, "0")
        + call("running", hog)  # the hog runs on CPU 0 from t = 1 s
        + f"\tfake_now += {30 * MS};\n"
        + '\tprintf("--\\n");\n'
        # a sleeper: its vtime is far behind, clamped to the clock minus the lag
        + call("enqueue", "task(2, 0)", "SCX_ENQ_WAKEUP")
        + '\tprintf("--\\n");\n'
        # a waker whose vtime is level with the hog's: no preemption
        + "\ttask(3, 0)->scx.dsq_vtime = tasks[1].scx.dsq_vtime + 30000000ULL;\n"
        + call("enqueue", "task(3, 0)", "SCX_ENQ_WAKEUP")
        + '\tprintf("--\\n");\n'
        # the same sleeper, but not a wake-up (e.g. a slice ran out): no preemption
        + call("enqueue", "task(4, 0)", "0")
    )
    log = run_policy(toolchain, tmp_path, VTIME, main(body))
    assert log == [
        "insert 1 q0", "kick 0 idle", "--",
        "insert 2 q0", "kick 0 idle", "kick 0 preempt", "--",
        "insert 3 q0", "kick 0 idle", "--",
        "insert 4 q0", "kick 0 idle",
    ]
    off = run_policy(toolchain, tmp_path, VTIME, main(body),
                     edit=("schedc_wakeup_preempt = true", "schedc_wakeup_preempt = false"))
    assert "kick 0 preempt" not in off
    policy_off = with_latency(VTIME, "wakeup_preempt = false")
    assert run_policy(toolchain, tmp_path, policy_off, main(body)) == off


def test_a_waking_task_preempts_a_lower_ranked_class_only(toolchain, tmp_path):
    body = (
        "\tfake_task_cpu = 0;\n"
        + call("enqueue", "task(1, 5)", "0")
        + call("running", "task(1, 5)")  # a lo task runs
        + '\tprintf("--\\n");\n'
        + call("enqueue", "task(2, -5)", "SCX_ENQ_WAKEUP")  # hi wakes: preempts
        + '\tprintf("--\\n");\n'
        + call("enqueue", "task(3, 5)", "SCX_ENQ_WAKEUP")  # lo wakes beside lo: FIFO order
        + '\tprintf("--\\n");\n'
        + call("running", "task(2, -5)")  # now hi runs
        + call("enqueue", "task(4, 5)", "SCX_ENQ_WAKEUP")  # lo wakes below hi: no
    )
    log = run_policy(toolchain, tmp_path, RANKED, main(body))
    assert log == [
        "insert 1 q1", "kick 0 idle", "--",
        "insert 2 q0", "kick 0 idle", "kick 0 preempt", "--",
        "insert 3 q1", "kick 0 idle", "--",
        "insert 4 q1", "kick 0 idle",
    ]


NAMED = """scheduler t "ui preempts background only, not build" {
  class ui when task.nice < 0 preempts background
  class build when task.nice == 0
  class background otherwise
  queue uq for ui fifo
  queue bq for build fifo
  queue gq for background fifo
  dispatch uq then bq then gq, aging 100ms
}
"""


def test_a_class_that_names_its_targets_preempts_those_and_nothing_else(toolchain, tmp_path):
    body = (
        "\tfake_task_cpu = 0;\n"
        + call("enqueue", "task(1, 0)", "0")
        + call("running", "task(1, 0)")  # a build task runs: ranked below ui, but not named
        + '\tprintf("--\\n");\n'
        + call("enqueue", "task(2, -5)", "SCX_ENQ_WAKEUP")
        + '\tprintf("--\\n");\n'
        + call("enqueue", "task(3, 5)", "0")
        + call("running", "task(3, 5)")  # a background task runs: named
        + call("enqueue", "task(4, -5)", "SCX_ENQ_WAKEUP")
        + '\tprintf("--\\n");\n'
        + call("enqueue", "task(5, 0)", "SCX_ENQ_WAKEUP")  # build still gets the default
        + '\tprintf("--\\n");\n'
        + "\tfake_queued[0] = 1;\n"  # a ui task waits in uq already: no overtaking it
        + call("running", "task(3, 5)")
        + call("enqueue", "task(6, -5)", "SCX_ENQ_WAKEUP")
    )
    log = run_policy(toolchain, tmp_path, NAMED, main(body))
    assert log == [
        "insert 1 q1", "kick 0 idle", "--",
        "insert 2 q0", "kick 0 idle", "--",
        "insert 3 q2", "kick 0 idle",
        "insert 4 local preempt", "--",  # uq is empty: straight to CPU 0, preempting
        "insert 5 q1", "kick 0 idle", "kick 0 preempt", "--",
        "kick 0 preempt", "insert 6 q0", "kick 0 idle",  # queued behind it, the CPU kicked
    ]
    # the same policy with a bare `preempts`: the build task is preempted too
    bare = run_policy(toolchain, tmp_path, NAMED.replace("preempts background", "preempts"),
                      main(body))
    assert bare[3:5] == ["insert 2 local preempt", "--"]


PINNED_PREEMPT = """scheduler t "hi runs on CPU 1 only and preempts there" {
  class hi when task.nice < 0 on cpus 1 preempts
  class lo otherwise
  queue hq for hi fifo
  queue lq for lo fifo
  dispatch hq then lq
}
"""


def test_a_pinned_class_preempts_only_a_cpu_of_its_set(toolchain, tmp_path):
    body = (
        "\tfake_task_cpu = 0;\n"
        + call("enqueue", "task(1, 5)", "0")
        + call("running", "task(1, 5)")  # lo runs on CPU 0, outside hi's set
        + call("enqueue", "task(2, -5)", "SCX_ENQ_WAKEUP")
        + '\tprintf("--\\n");\n'
        + "\tfake_task_cpu = 1;\n"
        + call("running", "task(1, 5)")  # lo runs on CPU 1
        + call("enqueue", "task(3, -5)", "SCX_ENQ_WAKEUP")
    )
    log = run_policy(toolchain, tmp_path, PINNED_PREEMPT, main(body))
    first, second = log[:log.index("--")], log[log.index("--") + 1:]
    # CPU 0 does not serve hq: queued, and CPU 0's task is not preempted for nothing
    assert first == ["insert 1 q1", "kick 0 idle", "insert 2 q0", "kick 0 idle"], log
    assert second == ["insert 3 local preempt"], log


def test_named_preemption_works_with_weighted_dispatch(toolchain, tmp_path):
    weighted = NAMED.replace("dispatch uq then bq then gq, aging 100ms",
                             "dispatch weighted uq: 4, bq: 2, gq: 1")
    body = (
        "\tfake_task_cpu = 1;\n"
        + call("enqueue", "task(3, 5)", "0")
        + call("running", "task(3, 5)")
        + call("enqueue", "task(4, -5)", "SCX_ENQ_WAKEUP")
        + call("enqueue", "task(1, 0)", "0")
        + call("running", "task(1, 0)")
        + call("enqueue", "task(2, -5)", "SCX_ENQ_WAKEUP")
    )
    log = run_policy(toolchain, tmp_path, weighted, main(body))
    assert log == [
        "insert 3 q2", "kick 1 idle", "insert 4 local preempt",
        "insert 1 q1", "kick 1 idle", "insert 2 q0", "kick 1 idle",
    ]


def test_an_ordered_class_starts_in_queue_order_even_on_an_idle_cpu(toolchain, tmp_path):
    """`select cpu idle` used to dispatch every waking task that found an idle CPU straight to
    it, past the queue: a short task could start before a long one that was queued first."""
    body = (
        "\tfake_select_idle = 1;\n\tfake_select_cpu = 1;\n\tfake_task_cpu = 1;\n"
        '\tprintf("cpu %d\\n", '
        "t_select_cpu((ctx[0] = (unsigned long long)task(1, 5), ctx[1] = 0, ctx[2] = 0, ctx)));\n"
        + call("enqueue", "task(1, 5)", "SCX_ENQ_WAKEUP")  # long: through its queue
        + '\tprintf("--\\n");\n'
        '\tprintf("cpu %d\\n", '
        "t_select_cpu((ctx[0] = (unsigned long long)task(2, 0), ctx[1] = 0, ctx[2] = 0, ctx)));\n"
    )
    log = run_policy(toolchain, tmp_path, ORDERED, main(body))
    assert log == [
        "cpu 1", "insert 1 q0", "kick 1 idle", "--",
        "insert 2 local", "cpu 1",  # a FIFO class still goes straight to the idle CPU
    ]


STRICT_FIFO = """scheduler t "strict start order for fifo queues" {
  class long when task.nice > 0
  class pinned when task.nice < 0 on cpus 1
  class short otherwise
  queue long_q for long fifo strict
  queue pinned_q for pinned fifo strict
  queue short_q for short fifo
  dispatch long_q then pinned_q then short_q, aging 500ms
}
"""


def test_a_strict_fifo_class_starts_in_queue_order_even_on_an_idle_cpu(toolchain, tmp_path):
    """`fifo strict`: a waking task that finds an idle CPU claims it but is queued (and the CPU
    kicked), through the default search and through its class's own CPUs alike; a plain FIFO
    class still goes straight to the idle CPU."""

    def select(pid: int, nice: int) -> str:
        return (
            '\tprintf("cpu %d\\n", '
            f"t_select_cpu((ctx[0] = (unsigned long long)task({pid}, {nice}), ctx[1] = 0, "
            "ctx[2] = 0, ctx)));\n"
        )

    idle = "\tfake_select_idle = 1;\n\tfake_select_cpu = 1;\n\tfake_task_cpu = 1;\n"
    body = (
        idle
        + select(1, 5)
        + call("enqueue", "task(1, 5)", "SCX_ENQ_WAKEUP")
        + '\tprintf("--\\n");\n'
        + select(2, -5)
        + call("enqueue", "task(2, -5)", "SCX_ENQ_WAKEUP")
        + '\tprintf("--\\n");\n'
        + select(3, 0)
    )
    log = run_policy(toolchain, tmp_path, STRICT_FIFO, main(body))
    assert log == [
        "cpu 1", "insert 1 q0", "kick 1 idle", "--",
        "destroy", "cpu 1", "insert 2 q1", "kick 1 idle", "--",  # the CPU walk ends its iterator
        "insert 3 local", "cpu 1",
    ]
    plain = run_policy(toolchain, tmp_path, STRICT_FIFO.replace(" fifo strict", " fifo"),
                       main(idle + select(1, 5) + select(2, -5)))
    assert plain == ["insert 1 local", "cpu 1", "destroy", "insert 2 local", "cpu 1"]


COMPLEMENT = """scheduler t "every CPU but one, and a set wider than 64 CPUs" {
  class housekeeping when task.nice > 0 on cpus not 1
  class wide when task.nice < 0 on cpus 1-200
  class rest otherwise
  queue hq for housekeeping fifo
  queue wq for wide fifo
  queue rq for rest fifo
  dispatch hq then wq then rq, aging 500ms
}
"""


def test_a_complement_set_skips_its_excluded_cpus_and_a_wide_set_stops_at_the_machine(
    toolchain, tmp_path
):
    """`on cpus not 1` on a 2-CPU machine may only use CPU 0; `on cpus 1-200` walks its 200
    CPUs but only those below nr_cpu_ids exist; each walk destroys its iterator."""

    def select(pid: int, nice: int) -> str:
        return (
            '\tprintf("cpu %d\\n", '
            f"t_select_cpu((ctx[0] = (unsigned long long)task({pid}, {nice}), ctx[1] = 0, "
            "ctx[2] = 0, ctx)));\n"
        )

    body = "\tfake_select_idle = 1;\n\tfake_select_cpu = 1;\n" + select(1, 5) + select(2, -5)
    log = run_policy(toolchain, tmp_path, COMPLEMENT, main(body))
    assert log == ["destroy", "insert 1 local", "cpu 0", "destroy", "insert 2 local", "cpu 1"]
    # the dispatch side: the complement's queue is served on CPU 0 only
    src = translate_text(tmp_path, COMPLEMENT)
    assert "all but 1" in src and "schedc_cpus_q1[200]" in src


def translate_text(tmp_path: Path, policy: str) -> str:
    src = tmp_path / "c.sched"
    src.write_text(policy)
    result = translate(src)
    assert result.ok, result.diagnostics
    return result.c_text


def test_slices_shrink_while_tasks_wait(toolchain, tmp_path):
    def at(ms: int) -> str:
        return (f"\tfake_now = 1000000000ULL + {ms * MS}ULL;\n"
                "\ttasks[1].scx.slice = 20000000ULL;\n"
                + call("tick", "task(1, 0)")
                + f'\tprintf("{ms} %llu\\n", tasks[1].scx.slice);\n')

    body = (
        "\tfake_task_cpu = 0;\n\tfake_now = 1000000000ULL;\n"
        "\ttask(1, 0)->scx.slice = 20000000ULL;\n"
        + call("running", "task(1, 0)")
        + at(5)  # nothing waits: the slice is left alone
        + "\tfake_queued[0] = 1;\n"
        + at(5) + at(10)  # one waits: the task runs at most 20 ms / 2
        + "\tfake_queued[0] = 3;\n"
        + at(5)  # three wait: 20 ms / 4
    )
    on = run_policy(toolchain, tmp_path, with_latency(FIFO, "slice_scaling = true"), main(body))
    assert on == ["5 20000000", "5 20000000", "10 0", "5 0"]
    # A loader may turn it off again before load (the global the verifier then knows false).
    loader_off = run_policy(toolchain, tmp_path, with_latency(FIFO, "slice_scaling = true"),
                            main(body),
                            edit=("schedc_slice_scaling = true", "schedc_slice_scaling = false"))
    assert loader_off == ["5 20000000", "5 20000000", "10 20000000", "5 20000000"]


def test_without_slice_scaling_there_is_no_tick_and_no_switch(toolchain, tmp_path):
    """Off (the default), slice scaling is not in the object: no tick callback (a policy
    without shares has nothing else to do there) and no global a loader could set."""
    off = translate_text(tmp_path, FIFO)
    assert "_tick" not in off and "const volatile bool schedc_slice_scaling" not in off
    assert "#define schedc_slice_scaling false" in off
    on = translate_text(tmp_path, with_latency(FIFO, "slice_scaling = true"))
    assert ".tick\t\t= (void *)" in on and "const volatile bool schedc_slice_scaling = true" in on


def test_tasks_of_a_lower_ranked_queue_do_not_shrink_the_slice(toolchain, tmp_path):
    body = (
        "\tfake_task_cpu = 0;\n\tfake_now = 1000000000ULL;\n"
        "\ttask(1, -5)->scx.slice = 20000000ULL;\n"
        + call("running", "task(1, -5)")  # a hi task runs
        + "\tfake_queued[1] = 4;\n\tfake_now += 15000000ULL;\n"
        + call("tick", "task(1, -5)")
        + '\tprintf("lo waits %llu\\n", tasks[1].scx.slice);\n'
        + "\tfake_queued[0] = 1;\n"
        + call("tick", "task(1, -5)")
        + '\tprintf("hi waits %llu\\n", tasks[1].scx.slice);\n'
    )
    log = run_policy(toolchain, tmp_path, with_latency(RANKED, "slice_scaling = true"), main(body))
    assert log == ["lo waits 20000000", "hi waits 0"]


# main()'s start for the vtime charge tests: task 1 is queued at 1 s and starts on CPU 0, v0 its
# virtual time then; CHARGED prints what stopping() has charged since v0.
VTIME_TASK_RUNS = (
    "\tfake_task_cpu = 0;\n\tfake_now = 1000000000ULL;\n"
    + call("enqueue", "task(1, 0)", "0")
    + "\tu64 v0 = tasks[1].scx.dsq_vtime;\n"
    + call("running", "task(1, 0)")
)
CHARGED = '\tprintf("charged %llu\\n", tasks[1].scx.dsq_vtime - v0);\n'


def test_one_vtime_queue_charges_the_time_run_not_the_slice_lost(toolchain, tmp_path):
    """A preempted or scaled-down task loses the rest of its slice (the kernel sets it to 0),
    so charging "slice given - slice left" would charge it the whole slice."""
    body = (
        VTIME_TASK_RUNS
        + "\tfake_now += 3000000ULL;\n\ttasks[1].scx.slice = 0;\n"
        + call("stopping", "task(1, 0)", "1")
        + CHARGED
        + "\ttasks[1].scx.weight = 200;\n"  # nice -5 or so: charged half
        + call("running", "&tasks[1]")
        + "\tfake_now += 3000000ULL;\n"
        + "\tv0 = tasks[1].scx.dsq_vtime;\n"
        + call("stopping", "&tasks[1]", "1")
        + CHARGED
    )
    log = run_policy(toolchain, tmp_path, VTIME, main(body))
    assert [line for line in log if line.startswith("charged")] == [
        "charged 3000000", "charged 1500000"
    ]


def test_without_preemption_and_scaling_one_vtime_queue_charges_the_slice_used(
    toolchain, tmp_path
):
    """With wake-up preemption and slice scaling off nothing cuts a slice short, so stopping
    charges "slice given - slice left" (as scx_simple does) and running records nothing: the
    record is what a policy with them off no longer pays for (docs/dsl.md 6.1). With
    preemption on (the default) it is the measured time again."""
    body = (
        VTIME_TASK_RUNS
        + '\tprintf("recorded %llu\\n", schedc_cpus[0].started);\n'
        # 7ms of the 20ms slice used, but 30ms pass on the clock (time in another class)
        + "\tfake_now += 30000000ULL;\n\ttasks[1].scx.slice = 13000000ULL;\n"
        + call("stopping", "task(1, 0)", "1")
        + CHARGED
        + "\ttasks[1].scx.slice = 25000000ULL;\n"  # refilled past the slice given: nothing
        + "\tv0 = tasks[1].scx.dsq_vtime;\n"
        + call("stopping", "task(1, 0)", "1")
        + CHARGED
    )
    policy_off = with_latency(VTIME, "wakeup_preempt = false")
    log = run_policy(toolchain, tmp_path, policy_off, main(body))
    assert [line for line in log if line.startswith(("charged", "recorded"))] == [
        "recorded 0", "charged 7000000", "charged 0"
    ]
    # The same calls with preemption on (the default): recorded, and the clock's 30ms charged.
    log = run_policy(toolchain, tmp_path, VTIME, main(body))
    assert [line for line in log if line.startswith(("charged", "recorded"))][:2] == [
        "recorded 1000000000", "charged 30000000"
    ]


def test_a_sleeper_comes_back_at_most_the_lag_behind_the_clock(toolchain, tmp_path):
    """A vtime queue's floor is clock - lag: a task further behind is queued at the floor, one
    within the lag keeps its key, and while the clock is still below the lag nothing is
    floored (no underflow to a huge floor)."""
    body = (
        "\tfake_task_cpu = 0;\n"
        "\ttask(1, 0)->scx.dsq_vtime = 5000000ULL;\n"
        "\tschedc_vtime_now[0] = 15000000ULL;\n"  # below the 20ms lag
        + call("enqueue", "task(1, 0)", "0")
        + '\tprintf("key %llu\\n", tasks[1].scx.dsq_vtime);\n'
        + "\tschedc_vtime_now[0] = 100000000ULL;\n"
        + call("enqueue", "task(1, 0)", "0")  # 95ms behind: floored at 80ms
        + '\tprintf("key %llu\\n", tasks[1].scx.dsq_vtime);\n'
        + "\ttasks[2].scx.dsq_vtime = 80000001ULL;\n"
        + call("enqueue", "task(2, 0)", "0")  # within the lag: kept
        + '\tprintf("key %llu\\n", tasks[2].scx.dsq_vtime);\n'
        + "\ttasks[3].scx.dsq_vtime = 79999999ULL;\n"
        + call("enqueue", "task(3, 0)", "0")  # one past it: floored
        + '\tprintf("key %llu\\n", tasks[3].scx.dsq_vtime);\n'
    )
    log = run_policy(toolchain, tmp_path, VTIME, main(body))
    assert [line for line in log if line.startswith("key")] == [
        "key 5000000", "key 80000000", "key 80000001", "key 80000000"
    ]


SHARES = """scheduler t "shares of CPU time" {
  class bg when task.nice > 0
  class fg otherwise
  queue fq for fg fifo
  queue bq for bg fifo
  dispatch shares fq: 3, bq: 1
}
"""


def test_a_queue_that_was_idle_banks_no_credit_under_shares(toolchain, tmp_path):
    lag = 20 * MS * 100  # SCHEDC_SHARE_LAG: 20ms at share 1
    body = (
        "\tschedc_share_clock = 50000000000ULL;\n"
        "\tschedc_shares[1].used = 7;\n"  # bq was idle for long: far behind
        "\tschedc_shares[0].used = 49000000000ULL;\n"  # fq is close behind: untouched
        + call("enqueue", "task(1, 5)", "SCX_ENQ_WAKEUP")
        + call("enqueue", "task(2, 0)", "SCX_ENQ_WAKEUP")
        + '\tprintf("used %llu %llu\\n", schedc_shares[0].used, schedc_shares[1].used);\n'
    )
    log = run_policy(toolchain, tmp_path, SHARES, main(body))
    assert log[-1] == f"used 49000000000 {50_000_000_000 - lag}"


@pytest.mark.parametrize(("lag", "lag_ns"), [("", 1000 * MS), (" lag 300ms", 300 * MS)])
def test_a_deadline_key_is_clamped_to_the_lag_and_its_default_is_1s(
    toolchain, tmp_path, lag, lag_ns
):
    """`deadline KEY` queues a task at now + min(KEY, lag), lag 1s when not given (the DSL
    reference's table): executed on the host for keys below, on and above the lag."""
    policy = (
        'scheduler t "one deadline queue" {\n  class all otherwise\n'
        f"  queue q for all deadline task.weight * 20ms{lag}\n}}\n"
    )
    weights = [1, 10, 15, 49, 50, 51, 100, 10000]
    now = 5_000_000_000
    body = f"\tfake_now = {now}ULL;\n"
    for i, w in enumerate(weights):
        body += f"\ttask({i}, 0)->scx.weight = {w};\n" + call("enqueue", f"&tasks[{i}]", "0")
        body += f'\tprintf("key %d %llu\\n", {i}, (unsigned long long)tasks[{i}].scx.dsq_vtime);\n'
    log = [line for line in run_policy(toolchain, tmp_path, policy, main(body)) if line.startswith("key")]
    assert log == [f"key {i} {now + min(w * 20 * MS, lag_ns)}" for i, w in enumerate(weights)]


STATS = """scheduler t "every task attribute the matcher tests do not cover" {
  class by_tgid when task.tgid == 77
  class by_allowed when task.nr_cpus_allowed == 3
  class busy when task.avg_runtime > 5ms
  class chatty when task.wakeup_rate > 100
  class idle when task.since_ran > 50ms
  class other otherwise
  queue q for by_tgid, by_allowed, busy, chatty, idle, other fifo
}
"""


def test_task_attributes_and_statistics_classify_as_the_oracle_says(toolchain, tmp_path):
    """task.tgid, task.nr_cpus_allowed and the statistics (avg_runtime, which counts a task
    that has not slept yet with its current burst; wakeup_rate; since_ran, the time since it
    last stopped, 0 when that is later than now) as the generated classifier reads them from
    the task and its storage, against a Python oracle over every combination."""
    tgids, allowed = [77, 78], [1, 2, 3]
    avgs, bursts = [0, 4 * MS, 6 * MS], [0, 6 * MS]
    rates, since = [50, 100, 101, 500], [0, 50 * MS, 50 * MS + 1, -1]  # -1: stopped after now
    now = 1000 * MS

    def arr(name: str, values: list[int]) -> str:
        return f"static const long long {name}[] = {{{', '.join(map(str, values))}}};\n"

    body = (
        "\tstruct task_struct *p = task(1, 0);\n"
        "\tstruct schedc_task *s = (struct schedc_task *)fake_storage[1];\n"
        f"\tfake_now = {now}ULL;\n"
        "\tfor (int a = 0; a < 2; a++) for (int b = 0; b < 3; b++) for (int c = 0; c < 3; c++)\n"
        "\tfor (int d = 0; d < 2; d++) for (int e = 0; e < 4; e++) for (int f = 0; f < 4; f++) {\n"
        "\t\tp->tgid = tgids[a]; p->nr_cpus_allowed = allowed[b];\n"
        "\t\ts->avg_runtime = avgs[c]; s->burst = bursts[d]; s->wakeup_rate = rates[e];\n"
        "\t\ts->last_stopped = fake_now - since[f];\n"
        '\t\tprintf("class %u\\n", schedc_classify(p, s, fake_now));\n'
        "\t}\n"
    )
    tables = (arr("tgids", tgids) + arr("allowed", allowed) + arr("avgs", avgs)
              + arr("bursts", bursts) + arr("rates", rates) + arr("since", since))
    log = run_policy(toolchain, tmp_path, STATS, tables + main(body))
    want = []
    for tgid in tgids:
        for n in allowed:
            for avg in avgs:
                for burst in bursts:
                    for rate in rates:
                        for ago in since:
                            tests = [tgid == 77, n == 3, max(avg, burst) > 5 * MS, rate > 100,
                                     max(ago, 0) > 50 * MS]
                            want.append(next((i for i, t in enumerate(tests) if t), 5))
    got = [int(line.split()[1]) for line in log if line.startswith("class ")]
    assert got == want
    assert set(want) == set(range(6))  # every class is reached


# main()'s body: for nice -7..7, the class a task gets and its slice ("nice N class C slice S").
NICE_SWEEP = (
    "\tstruct schedc_task *s = (struct schedc_task *)fake_storage[1];\n"
    "\tfor (int nice = -7; nice <= 7; nice++) {\n"
    "\t\tstruct task_struct *p = task(1, nice);\n"
    "\t\tu32 cls = schedc_classify(p, s, 0);\n"
    '\t\tprintf("nice %d class %u slice %llu\\n", nice, cls, schedc_slice(cls, p, s, 0));\n'
    "\t}\n"
)

PARAMS = """scheduler t "params with ranges" {
  param lim = 0 in -5..5
  param sl = 5ms in 1ms..10ms
  class low when task.nice < lim
  class rest otherwise
  queue q for low, rest fifo
  slice low = sl, rest = sl
}
"""


@pytest.mark.parametrize(
    ("lim", "sl_ns", "lim_seen", "sl_seen"),
    [(-100, 50 * MS, -5, 10 * MS), (100, 0, 5, 1 * MS), (3, 7 * MS, 3, 7 * MS),
     (-5, 1 * MS, -5, 1 * MS), (5, 10 * MS, 5, 10 * MS)],
)
def test_a_param_a_loader_sets_out_of_its_range_is_clamped_to_it(
    toolchain, tmp_path, lim, sl_ns, lim_seen, sl_seen
):
    """A `param` with a range is read through a clamp to that range (a loader may write any
    value before load): signed for an integer, unsigned for a duration; in range, as set."""
    body = NICE_SWEEP
    edits = (("param_lim = 0LL;", f"param_lim = {lim}LL;"),
             ("param_sl = 5000000ULL;", f"param_sl = {sl_ns}ULL;"))
    log = run_policy(toolchain, tmp_path, PARAMS, main(body), edits=edits)
    want = [f"nice {n} class {0 if n < lim_seen else 1} slice {sl_seen}" for n in range(-7, 8)]
    assert [line for line in log if line.startswith("nice ")] == want


def test_the_statistics_are_kept_by_the_callbacks_the_classifier_reads_them_from(toolchain, tmp_path):
    """The statistics as the generated callbacks keep them: wakeup_rate from the wake-ups seen
    by runnable() (a moving average, 7/8 old + 1/8 new; a runnable() that is not a wake-up
    does not count), avg_runtime from the bursts that running()/stopping() measure (averaged
    when the task sleeps, the current burst counting before that), since_ran from the last
    stopping()."""
    def at(ms: float) -> str:
        return f"\tfake_now = {int(1000 * MS + ms * MS)}ULL;\n"

    def cls(p: str, label: str) -> str:
        return (f"\tprintf(\"{label} %u\\n\", schedc_classify({p}, "
                f"(struct schedc_task *)fake_storage[{p}->pid & 7], fake_now));\n")

    body = (
        "\tstruct task_struct *a = task(1, 0), *b;\n"
        "\ta->tgid = 78; a->nr_cpus_allowed = 2;\n"
        + at(0) + call("runnable", "a", "SCX_ENQ_WAKEUP")
        + at(10) + call("runnable", "a", "SCX_ENQ_WAKEUP") + cls("a", "rate100")  # 10ms: 100/s
        + at(15) + call("runnable", "a", "SCX_ENQ_WAKEUP") + cls("a", "rate113")  # 5ms: 200/s
        + at(16) + call("runnable", "a", "0")  # not a wake-up: no sample
        + at(20) + call("running", "a") + at(23) + call("stopping", "a", "1")  # 3ms, runnable
        + cls("a", "burst3")
        + at(30) + call("running", "a") + at(34) + call("stopping", "a", "0")  # 4ms, then sleeps
        + cls("a", "avg7")
        + "\tb = task(2, 0);\n\tb->tgid = 78; b->nr_cpus_allowed = 2;\n"
        + at(0) + call("running", "b") + at(1) + call("stopping", "b", "0")
        + at(40) + cls("b", "since39") + at(52) + cls("b", "since51")
    )
    log = run_policy(toolchain, tmp_path, STATS, main(body))
    got = dict(line.split() for line in log if line.split()[0] in
               ("rate100", "rate113", "burst3", "avg7", "since39", "since51"))
    # classes: 2 busy (avg_runtime > 5ms), 3 chatty (> 100 wake-ups/s), 4 idle (since_ran >
    # 50ms), 5 other; a's first check: rate 100 is not above 100, and it never stopped
    assert got == {"rate100": "4", "rate113": "3", "burst3": "3", "avg7": "2",
                   "since39": "5", "since51": "4"}


CALLS = """scheduler t "calls and negation at run time" {
  param k = 2 in -10..10
  param sl = 5ms in 1ms..10ms
  class neg when task.nice < -k
  class low when min(task.nice, k) == task.nice
  class rest otherwise
  queue q for neg, low, rest fifo
  slice neg = min(sl, 3ms), low = max(sl, 7ms), rest = sl
}
"""


def test_min_max_and_negation_of_run_time_values_are_signed_for_integers(toolchain, tmp_path):
    """min/max and unary minus on values known only at run time (a param, a task's nice): an
    integer min is signed (min(-3, 2) is -3), a duration's unsigned; -k negates."""
    body = NICE_SWEEP
    log = run_policy(toolchain, tmp_path, CALLS, main(body))
    want = [
        f"nice {n} class 0 slice {3 * MS}" if n < -2
        else f"nice {n} class 1 slice {7 * MS}" if n <= 2
        else f"nice {n} class 2 slice {5 * MS}"
        for n in range(-7, 8)
    ]
    assert [line for line in log if line.startswith("nice ")] == want


WIDE = """scheduler t "a CPU set across several 64-CPU words" {
  class pinned when task.nice < 0 on cpus 1, 63-65, 128, 190-191
  class rest otherwise
  queue pq for pinned fifo
  queue rq for rest fifo
  dispatch pq then rq, aging 100ms
}
"""


def test_a_cpu_set_across_words_holds_exactly_its_cpus(toolchain, tmp_path):
    """`on cpus` is one 64-bit word per block of 64 CPUs: each word's CPUs and only those,
    at both ends of each word, and no CPU of a block the set does not touch."""
    body = (
        "\tfor (int cpu = 0; cpu < 260; cpu++)\n"
        '\t\tif (schedc_queue_on_cpu(0, cpu)) printf("on %d\\n", cpu);\n'
    )
    log = run_policy(toolchain, tmp_path, WIDE, main(body))
    assert [int(line.split()[1]) for line in log if line.startswith("on ")] == [
        1, 63, 64, 65, 128, 190, 191
    ]
