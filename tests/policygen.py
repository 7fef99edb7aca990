"""A generator of random well-typed policies, driven by a `random.Random`.

Hypothesis hands it a seeded Random (so failures shrink and replay); the sandbox test uses
fixed seeds. Every construct of the DSL appears with some probability.
"""

from __future__ import annotations

import random

COMMS = ["bash", "make", "cc1", "nginx", "redis-server", "kworker/0:1", "a", "systemd-journal"]
GLOBS = ["ng*", "*worker*", "c?1", "*", "sys*d", "a*b*c"]
CGROUPS = ["/system.slice", "/user.slice/user-1000.slice", "/a/b/c"]


class PolicyGen:
    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd
        self.dur_params: list[str] = []
        self.int_params: list[str] = []
        self.bool_params: list[str] = []

    def dur_lit(self) -> str:
        unit = self.r.choice(["us", "ms"])
        value = self.r.randint(50, 900) if unit == "us" else self.r.randint(1, 20)
        return f"{value}{unit}"

    def cpu_set(self) -> str:
        """An `on cpus` set: a small range, a wide one (past 64 CPUs) or a complement."""
        r = self.r
        kind = r.random()
        if kind < 0.6:
            return f"0-{r.randint(0, 3)}"
        if kind < 0.8:
            return f"{r.randint(0, 1)}-{r.randint(64, 300)}"
        return f"not {r.randint(0, 1)}"

    def dur(self, depth: int, task: bool = True) -> str:
        choices = ["lit", "lit"]
        if self.dur_params:
            choices.append("param")
        if task:
            choices += ["avg", "since"]
        if depth > 0:
            choices += ["mul", "div", "add", "min", "clamp"]
        kind = self.r.choice(choices)
        if kind == "lit":
            return self.dur_lit()
        if kind == "param":
            return self.r.choice(self.dur_params)
        if kind == "avg":
            return "task.avg_runtime"
        if kind == "since":
            return "task.since_ran"
        if kind == "mul":
            return f"{self.dur(depth - 1, task)} * {self.r.randint(1, 4)}"
        if kind == "div":
            return f"{self.dur(depth - 1, task)} / {self.r.randint(1, 4)}"
        if kind == "add":
            return f"({self.dur(depth - 1, task)} + {self.dur(depth - 1, task)})"
        if kind == "min":
            return f"min({self.dur(depth - 1, task)}, {self.dur(depth - 1, task)})"
        return f"clamp({self.dur(depth - 1, task)}, 1ms, 30ms)"

    def int_(self, depth: int) -> str:
        choices = ["lit", "nice", "weight", "pid", "uid", "rate", "ncpus"]
        if self.int_params:
            choices.append("param")
        if depth > 0:
            choices += ["add", "mul", "div", "neg", "max", "ratio"]
        kind = self.r.choice(choices)
        if kind == "lit":
            return str(self.r.randint(-20, 200))
        if kind == "param":
            return self.r.choice(self.int_params)
        simple = {
            "nice": "task.nice", "weight": "task.weight", "pid": "task.pid", "uid": "task.uid",
            "rate": "task.wakeup_rate", "ncpus": "task.nr_cpus_allowed",
        }
        if kind in simple:
            return simple[kind]
        if kind == "add":
            return f"({self.int_(depth - 1)} {self.r.choice('+-')} {self.int_(depth - 1)})"
        if kind == "mul":
            return f"{self.int_(depth - 1)} * {self.r.randint(-3, 3)}"
        if kind == "div":
            return f"{self.int_(depth - 1)} / {self.r.choice([-3, -1, 2, 7])}"
        if kind == "neg":
            return f"-({self.int_(depth - 1)})"
        if kind == "max":
            return f"max({self.int_(depth - 1)}, {self.int_(depth - 1)})"
        return f"{self.dur(depth - 1)} / {self.dur_lit()}"

    def cond(self, depth: int) -> str:
        choices = ["cmp_int", "cmp_dur", "comm_eq", "comm_in", "prefix", "glob", "kthread"]
        choices += ["pinned", "cgroup", "parent"]
        if self.bool_params:
            choices.append("param")
        if depth > 0:
            choices += ["and", "or", "not"]
        kind = self.r.choice(choices)
        op = self.r.choice(["<", "<=", ">", ">=", "==", "!="])
        if kind == "cmp_int":
            return f"{self.int_(depth)} {op} {self.int_(depth)}"
        if kind == "cmp_dur":
            return f"{self.dur(depth)} {op} {self.dur(depth)}"
        if kind == "comm_eq":
            return f'task.comm {self.r.choice(["==", "!="])} "{self.r.choice(COMMS)}"'
        if kind == "comm_in":
            names = self.r.sample(COMMS, self.r.randint(1, 4))
            return "task.comm in [" + ", ".join(f'"{n}"' for n in names) + "]"
        if kind == "prefix":
            return f'task.comm startswith "{self.r.choice(COMMS)[:3]}"'
        if kind == "glob":
            return f'task.comm matches "{self.r.choice(GLOBS)}"'
        if kind == "parent":
            whose = self.r.choice(["parent", "process"])
            return f'task.{whose}.comm == "{self.r.choice(COMMS)}"'
        if kind == "cgroup":
            return f'task.cgroup under "{self.r.choice(CGROUPS)}"'
        if kind in ("kthread", "pinned"):
            return f"task.{kind}"
        if kind == "param":
            return self.r.choice(self.bool_params)
        if kind == "not":
            return f"not ({self.cond(depth - 1)})"
        return f"({self.cond(depth - 1)} {kind} {self.cond(depth - 1)})"

    def policy(self, name: str = "gen") -> str:
        r = self.r
        lines = [f'scheduler {name} "randomly generated" {{', "  tags generated"]
        for i in range(r.randint(0, 3)):
            kind = r.choice(["dur", "int", "bool"])
            pname = f"p_{kind}{i}"
            if kind == "dur":
                lines.append(f"  param {pname} = {self.dur_lit()}")
                self.dur_params.append(pname)
            elif kind == "int":
                lines.append(f"  param {pname}: int = {r.randint(0, 100)} in 0..100")
                self.int_params.append(pname)
            else:
                lines.append(f"  param {pname} = {r.choice(['true', 'false'])}")
                self.bool_params.append(pname)
        nclasses = r.randint(1, 4)
        classes = [f"c{i}" for i in range(nclasses)]
        nqueues = r.randint(1, nclasses)
        owner = {c: (i if i < nqueues else r.randrange(nqueues)) for i, c in enumerate(classes)}
        queue_cpus = {q: (self.cpu_set() if r.random() < 0.2 else None) for q in range(nqueues)}
        ranks = list(range(nqueues))
        r.shuffle(ranks)
        top = ranks[0]
        for i, c in enumerate(classes):
            cond = "otherwise" if i == nclasses - 1 else f"when {self.cond(2)}"
            extra = ""
            q = owner[c]
            if queue_cpus[q]:
                extra += f" on cpus {queue_cpus[q]}"
            if q == top and nqueues > 1 and r.random() < 0.5:
                extra += " preempts"
                if c != classes[-1] and r.random() < 0.5:
                    extra += f" {classes[-1]}"  # by name: only the last class
            lines.append(f"  class {c} {cond}{extra}")
        for q in range(nqueues):
            members = ", ".join(c for c in classes if owner[c] == q)
            order = r.choice(["fifo", "vtime", "ordered", "deadline"])
            if order == "fifo":
                spec = "fifo"
            elif order == "vtime":
                spec = "vtime" + (f" lag {self.dur(1, task=False)}" if r.random() < 0.5 else "")
            elif order == "ordered":
                direction = r.choice(["ascending", "descending"])
                spec = f"ordered by {self.dur(2)} {direction}"
            else:
                spec = f"deadline {self.dur(2)}"
            if order != "fifo" and r.random() < 0.15:
                spec += f" max_wait {r.choice(['5ms', '50ms', '200ms', '2s'])}"  # per-task bound
            if order in ("fifo", "vtime") and r.random() < 0.3:
                spec += " strict"  # start order kept on an idle CPU
            lines.append(f"  queue q{q} for {members} {spec}")
        order = [f"q{i}" for i in ranks]
        if nqueues > 1 and r.random() < 0.3 and not any("preempts" in line for line in lines):
            kind = r.choice(["weighted", "shares"])
            lines.append(f"  dispatch {kind} " + ", ".join(f"{q}: {r.randint(1, 5)}" for q in order))
        elif nqueues > 1:
            lines.append(f"  dispatch {' then '.join(order)}, aging {r.randint(10, 500)}ms")
        slices = [f"{c} = clamp({self.dur(2)}, 100us, 100ms)" for c in classes if r.random() < 0.7]
        if slices:
            lines.append("  slice " + ", ".join(slices))
        if r.random() < 0.5:
            lines.append(f"  select cpu {r.choice(['idle', 'previous'])}")
        if r.random() < 0.3:
            lines.append(f"  watchdog {r.randint(1, 30)}s")
        for i in range(r.randint(0, 3)):
            event = r.choice(["enqueue", "direct", "wakeup", "preempt", "aging"])
            of = f" of {r.choice(classes)}" if event != "aging" and r.random() < 0.5 else ""
            lines.append(f"  counter k{i} counts {event}{of}")
        if r.random() < 0.4:  # the latency defaults, switched: each on/off combination loads
            names = ["kick_idle", "wakeup_preempt", "slice_scaling"]
            picked = r.sample(names, r.randint(1, 3))
            switches = [f"{n} = {r.choice(['true', 'false'])}" for n in picked]
            lines.append("  latency " + ", ".join(switches))
        lines.append("}")
        return "\n".join(lines) + "\n"
