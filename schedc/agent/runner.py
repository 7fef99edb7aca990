"""Calling an operation safely: arguments validated, errors structured, heavy work isolated.

`Runner.call(name, arguments)` never raises for anything an agent sends. Operations that run
clang, libclang or the VM run in a worker process (`python -m schedc.agent.worker`) in its own
session, with a wall-clock limit (the whole process group is killed when it is exceeded) and,
for compile and check, an address-space limit; a source that makes clang loop or eat memory
costs one worker. Fast operations (search, get, record, reference) run in-process.

A hostile client gets structured errors, never a dead or swamped server: at most
`Limits.workers` workers run at once (SCHEDC_MCP_WORKERS, default the CPU count) and at most
`Limits.queue` more calls wait for one (SCHEDC_MCP_QUEUE, default 4); past that a call is
refused at once as `busy`. A call that its client cancels (or abandons by going away) has its
worker's process group killed. Every worker gets a scratch folder of its own (its TMPDIR)
that is removed however the worker ends, with what the check cache kept for it. Arguments are
size-checked before they are parsed, and what goes back names no host path: the scratch
folder, the temporary directory, the installation, the repository and the home folder are
cut out of messages (a policy file is `policy.sched` or `policy.bpf.c`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from schedc.agent.operations import (
    MAX_SOURCE_CHARS,
    OPERATIONS,
    Context,
    Operation,
    Progress,
    error,
    source_key,
)
from schedc.agent.profiling import ProfileAllow
from schedc.agent.reference import ReferenceMissing
from schedc.agent.warm_workers import DEFAULT_MAX_JOBS, Zygote, ZygoteJob, ZygoteUnavailable
from schedc.compiler.cage import COMPILE_TIMEOUT, MEMORY_BYTES
from schedc.lifecycle import child_group, kill_group, wait_group_gone
from schedc.repo.entries import describe
from schedc.repo.gitstore import RepoError
from schedc.repo.models import scenario_hash
from schedc.settings import (
    EnvironmentProblem,
    Settings,
    kernel_matrix,
    load_settings,
    mcp_queue,
    mcp_workers,
)

DEFAULT_COMPILE_TIMEOUT = COMPILE_TIMEOUT  # the limits of every sandboxed clang run too
DEFAULT_VERIFY_TIMEOUT = 900.0
WORKER_MEMORY_BYTES = MEMORY_BYTES  # address space of a compile or check worker
MAX_RESULT_BYTES = 16 * 1024 * 1024
MAX_REMEMBERED = 64  # passing verifications kept per runner
MAX_ARGUMENT_CHARS = MAX_SOURCE_CHARS  # one string argument, before the schema is applied
MAX_ARGUMENTS_CHARS = 1024 * 1024  # all of a call's arguments together (as JSON, roughly)
SCRATCH_PREFIX = "schedc-agent-"
POLL_SECONDS = 0.1  # how often a waiting call looks at its deadline and its cancellation


@dataclass
class Limits:
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT  # compile_policy, check_policy
    verify_timeout: float = DEFAULT_VERIFY_TIMEOUT  # verify_policy, submit_policy (VM boots)
    memory_bytes: int | None = WORKER_MEMORY_BYTES
    workers: int = field(default_factory=mcp_workers)  # worker processes at once
    queue: int = field(default_factory=mcp_queue)  # calls waiting for a worker, at most
    warm_jobs: int = DEFAULT_MAX_JOBS  # jobs one warm zygote forks before a fresh one


def _file_identity(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return path
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


@dataclass
class Runner:
    repo: Path | None = None
    overrides: dict[str, str | None] = field(default_factory=dict)  # settings, e.g. btf
    limits: Limits = field(default_factory=Limits)
    isolate: bool = True
    profile_allow: ProfileAllow = field(default_factory=ProfileAllow)
    # The operator's notices of calls run in this process (Context.notice); the CLI prints them.
    notice: Progress | None = None
    # Passing verify_policy results of this session, by source and kernel: a later
    # submit_policy of the same source records one instead of booting the kernel again.
    verified: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Behaviour reports of this session's test_policy calls (stored form), by source, scenario
    # and kernel: a later submit_policy of the same source and scenario stores one.
    # (One report per kernel of the matrix.)
    tested: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    # MCP tool calls run in parallel threads.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _admitted: int = field(default=0, repr=False)  # calls running in a worker or waiting
    _slots: threading.Semaphore = field(init=False, repr=False)
    # Workers are forked by a warm zygote (schedc.agent.zygote) instead of started cold.
    warm_workers: bool = True
    _zygote: Zygote | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._slots = threading.Semaphore(self.limits.workers)

    def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """The operation's result; `cancel`, once set, stops a worker that runs for it."""
        private = self._private_paths()

        def scrubbed(message: str) -> None:  # "compiling /tmp/.../policy.sched"
            if progress is not None:
                progress(scrub(message, private))

        try:
            result = self._call(name, arguments, scrubbed if progress else None, cancel)
        except Exception as exc:  # noqa: BLE001 (a bug here must not reach the client raw)
            result = error("internal", f"{name} failed: {type(exc).__name__}", _BUG)
        return scrub(result, private)

    def _call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> dict[str, Any]:
        op = OPERATIONS.get(name)
        if op is None:
            return error(
                "unknown_tool",
                f"there is no tool named '{name[:64]}'",
                f"the tools are: {', '.join(OPERATIONS)}",
            )
        if arguments is not None and not isinstance(arguments, dict):
            return error("invalid_arguments", "the arguments must be a JSON object")
        too_large = oversized(arguments or {})
        if too_large:
            return error("too_large", too_large, f"see the input schema of {name}")
        try:
            args = op.args.model_validate(arguments or {})
        except ValidationError as exc:
            return error("invalid_arguments", describe(exc), f"see the input schema of {name}")
        prior = None
        if op.name == "submit_policy" and args.verify != "never":  # type: ignore[attr-defined]
            key = self._verified_key(args)
            with self._lock:
                prior = self.verified.get(key)
        behaviour = None
        if op.name == "submit_policy" and args.scenario is not None:  # type: ignore[attr-defined]
            with self._lock:
                behaviour = self.tested.get(self._tested_key(args))
        if op.isolated and self.isolate:
            result = self._queued(
                op, args.model_dump(mode="json"), progress, prior, cancel, behaviour
            )
        else:
            ctx = self.context(progress)
            ctx.cancel = cancel
            ctx.prior_verification = prior
            ctx.prior_behaviour = behaviour
            result = run_guarded(op, args, ctx)
        evidence = result.pop("evidence", None) if op.name == "test_policy" else None
        # What was built with other param values (`set`) is not what submit_policy stores.
        built_as_is = not getattr(args, "set", None)
        if isinstance(evidence, list) and evidence and "source_key" in result and built_as_is:
            key3 = (result["source_key"], str(result.get("scenario_hash")), self._kernel_identity())
            with self._lock:
                self.tested[key3] = evidence
                while len(self.tested) > MAX_REMEMBERED:
                    del self.tested[next(iter(self.tested))]  # the oldest
        if (
            op.name == "verify_policy"
            and result.get("ok") is True
            and "source_key" in result
            and built_as_is
        ):
            key = (result["source_key"], self._kernel_identity())
            with self._lock:
                self.verified[key] = result
                while len(self.verified) > MAX_REMEMBERED:
                    del self.verified[next(iter(self.verified))]  # the oldest
        return result

    def _tested_key(self, args: Any) -> tuple[str, str, str]:
        return (
            source_key(args.language, args.source),
            scenario_hash(args.scenario),
            self._kernel_identity(),
        )

    def _verified_key(self, args: Any) -> tuple[str, str]:
        return source_key(args.language, args.source), self._kernel_identity()

    def _kernel_identity(self) -> str:
        """The sandbox kernels (every kernel of the matrix) as they are on disk now: a
        replaced bzImage is another kernel, and another matrix other kernels."""
        settings = load_settings(**self.overrides)
        try:
            kernels = [k.kernel or "" for k in kernel_matrix(settings, attach=False)]
        except EnvironmentProblem:  # a kit without a bzImage: the call itself says so
            kernels = [settings.kernel or ""]
        return os.pathsep.join(_file_identity(k) for k in kernels)

    def context(self, progress: Progress | None = None) -> Context:
        settings = load_settings(**self.overrides)
        ctx = Context(self.repo, settings, progress or (lambda _m: None))
        ctx.profile_allow = self.profile_allow
        ctx.notice = self.notice
        return ctx

    def timeout(self, op: Operation) -> float:
        return self.limits.verify_timeout if op.slow else self.limits.compile_timeout

    def _queued(
        self,
        op: Operation,
        arguments: dict[str, Any],
        progress: Progress | None,
        prior: dict[str, Any] | None,
        cancel: threading.Event | None,
        behaviour: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The call in a worker once one of `limits.workers` is free; `busy` at once when
        `limits.queue` calls already wait."""
        with self._lock:
            if self._admitted >= self.limits.workers + self.limits.queue:
                return error(
                    "busy",
                    f"all {self.limits.workers} workers are busy and {self.limits.queue} "
                    f"calls wait for one; {op.name} was not started",
                    "wait for an earlier call to finish and call again; the server runs at most "
                    "SCHEDC_MCP_WORKERS calls at once (and queues SCHEDC_MCP_QUEUE)",
                )
            self._admitted += 1
        try:
            while not self._slots.acquire(timeout=POLL_SECONDS):
                if cancel is not None and cancel.is_set():
                    return _cancelled(op)
            try:
                if cancel is not None and cancel.is_set():
                    return _cancelled(op)
                return self._in_worker(op, arguments, progress, prior, cancel, behaviour)
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._admitted -= 1

    def _in_worker(
        self,
        op: Operation,
        arguments: dict[str, Any],
        progress: Progress | None,
        prior: dict[str, Any] | None = None,
        cancel: threading.Event | None = None,
        behaviour: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request = {
            "op": op.name,
            "arguments": arguments,
            "prior_verification": prior,
            "prior_behaviour": behaviour,
            "repo": str(self.repo) if self.repo else None,
            "overrides": self.overrides,
            "memory_bytes": None if op.slow else self.limits.memory_bytes,
        }
        limit = self.timeout(op)
        started = time.monotonic()
        # The worker's TMPDIR: its staged source, clang's and the sandbox's files all land
        # here, and the folder goes however the worker ends (killed at the limit, cancelled,
        # crashed), which TemporaryDirectory in a SIGKILLed process cannot do.
        scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
        env = dict(os.environ, TMPDIR=str(scratch))
        stopped: str | None = None  # "timeout" or "cancelled"
        try:
            # The answer goes to a file and only the reader thread reads stderr: with two
            # readers on one pipe (communicate() reads stderr too) progress lines went missing.
            with tempfile.TemporaryFile(dir=scratch) as answer:
                proc = self._spawn(request, answer, env)
                tail: list[str] = []
                reader = threading.Thread(
                    target=_read_progress, args=(proc, progress, tail), daemon=True
                )
                reader.start()
                with child_group(proc):  # killed at once if the server is stopped
                    try:
                        if isinstance(proc, subprocess.Popen):  # a cold worker reads stdin
                            assert proc.stdin is not None
                            try:
                                proc.stdin.write(json.dumps(request).encode())
                                proc.stdin.close()
                            except BrokenPipeError:  # it died before reading: see its status
                                pass
                        stopped = _wait(proc, started + limit, cancel)
                    finally:
                        kill_group(proc.pid)  # the worker, and whatever it left running
                        proc.wait()
                        # its slot is free only once the whole group is: a child it forked
                        # (clang, bwrap) may still be exiting after the worker was reaped
                        wait_group_gone(proc.pid)
                        reader.join(timeout=5)
                        if proc.stderr is not None:
                            proc.stderr.close()
                answer.seek(0)
                out = answer.read(MAX_RESULT_BYTES + 1)
        finally:
            _remove_scratch(scratch)
        if stopped == "cancelled":
            return _cancelled(op)
        if stopped == "timeout":
            return error(
                "timeout",
                f"{op.name} took longer than {limit:g} s and was stopped",
                "simplify the policy; a policy that takes this long to build is not one the "
                "kernel would load quickly either"
                if not op.slow
                else "the sandbox VM may be slow on this machine; raise the limit "
                "(schedc mcp --verify-timeout SECONDS)",
            )
        if proc.returncode != 0 or not out:
            why = _signal_name(proc.returncode)
            return error(
                "worker_failed",
                f"{op.name} stopped after {time.monotonic() - started:.1f} s ({why})",
                "; ".join(tail[-3:]) or "the worker printed nothing",
            )
        if len(out) > MAX_RESULT_BYTES:
            return error("internal", f"{op.name} produced an oversized result", None)
        try:
            result = json.loads(out)
        except json.JSONDecodeError:
            return error("internal", f"{op.name}: the worker's answer is not JSON", None)
        return result if isinstance(result, dict) else error("internal", "bad worker answer")

    def _spawn(
        self, request: dict[str, Any], answer: IO[bytes], env: dict[str, str]
    ) -> subprocess.Popen[bytes] | ZygoteJob:
        """The worker for one job: forked by the warm zygote (`warm_workers`), else a fresh
        `python -m schedc.agent.worker`; either way in a process group of its own."""
        if self.warm_workers:
            with self._lock:
                if self._zygote is None:
                    self._zygote = Zygote(self.limits.warm_jobs)
            try:
                return self._zygote.start(request, answer, env)
            except ZygoteUnavailable as why:
                if self.notice is not None:
                    self.notice(f"{why}; starting a cold worker")
        return subprocess.Popen(
            [sys.executable, "-m", "schedc.agent.worker"],
            stdin=subprocess.PIPE,
            stdout=answer,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: clang and QEMU die with it
        )

    def close(self) -> None:
        """Stops the warm zygote, if one was started (jobs that run go on to their end)."""
        if self._zygote is not None:
            self._zygote.close()

    def _settings_or_none(self) -> Settings | None:
        try:
            return load_settings(**self.overrides)
        except EnvironmentProblem:
            return None

    def _private_paths(self) -> list[str]:
        """Folders whose names are nobody's business but this machine's, longest first."""
        roots = {tempfile.gettempdir(), "/tmp", str(Path.home()), str(_PACKAGE_ROOT)}
        if self.repo:
            roots.add(str(self.repo))
        settings = self._settings_or_none()
        if settings is not None:
            for value in (
                settings.clang,
                settings.bpftool,
                settings.btf,
                settings.kernel,
                settings.libbpf_include,
                settings.libbpf,
                settings.cache_dir,
            ):
                if value and os.path.isabs(value):
                    roots.add(str(Path(value).parent) if Path(value).is_file() else value)
        expanded = set()
        for root in roots:
            if root and root != "/":
                expanded.add(root.rstrip("/"))
                expanded.add(os.path.realpath(root))
        return sorted(expanded, key=len, reverse=True)


_BUG = "this is a schedc bug; please report it with the arguments"
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
# Texts the agent sent or asked for: left alone.
_SOURCE_KEYS = {"source", "c", "reference", "scenario_text"}


def _wait(
    proc: subprocess.Popen[bytes] | ZygoteJob, deadline: float, cancel: threading.Event | None
) -> str | None:
    """Waits for the worker: None when it ended, "timeout" or "cancelled" when it must stop."""
    while True:
        try:
            proc.wait(timeout=POLL_SECONDS)
            return None
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            return "cancelled"
        if time.monotonic() >= deadline:
            return "timeout"


def _cancelled(op: Operation) -> dict[str, Any]:
    return error("cancelled", f"{op.name} was cancelled by the client", None)


def _remove_scratch(scratch: Path) -> None:
    """A worker's scratch folder (the operations keep their generated C in it too)."""
    shutil.rmtree(scratch, ignore_errors=True)


def oversized(arguments: dict[str, Any]) -> str | None:
    """Why the arguments are too large to look at, or None; before any parsing, so that a
    10 MB source costs a length check, not a validation error that quotes it."""
    total = 0
    todo: list[tuple[str, Any]] = list(arguments.items())
    while todo:
        where, value = todo.pop()
        if isinstance(value, str):
            total += len(value)
            if len(value) > MAX_ARGUMENT_CHARS:
                return (
                    f"argument '{where[:64]}' is {len(value)} characters; "
                    f"the limit is {MAX_ARGUMENT_CHARS}"
                )
        elif isinstance(value, dict):
            todo.extend((f"{where}.{k}", v) for k, v in value.items())
            total += len(value)
        elif isinstance(value, list):
            todo.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
            total += len(value)
        else:
            total += 8
        if total > MAX_ARGUMENTS_CHARS:
            return f"the arguments are larger than {MAX_ARGUMENTS_CHARS} characters together"
    return None


def scrub(payload: Any, roots: list[str], key: str | None = None) -> Any:
    """payload with every path under one of roots cut to its last part (`/tmp/x/policy.sched`
    is `policy.sched`), and each root alone to `…`; source texts are left as they are."""
    if not roots:
        return payload
    if isinstance(payload, dict):
        return {k: (v if k in _SOURCE_KEYS else scrub(v, roots, k)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [scrub(v, roots, key) for v in payload]
    if isinstance(payload, str):
        return _scrub_pattern(tuple(roots)).sub(_last_part, payload)
    return payload


def _last_part(match: re.Match[str]) -> str:
    rest = match.group("rest")
    return rest.rsplit("/", 1)[-1] if rest else "…"


_PATTERNS: dict[tuple[str, ...], re.Pattern[str]] = {}


def _scrub_pattern(roots: tuple[str, ...]) -> re.Pattern[str]:
    pattern = _PATTERNS.get(roots)
    if pattern is None:
        alternatives = "|".join(re.escape(r) for r in roots)
        pattern = re.compile(
            rf"(?<![\w./-])(?:{alternatives})(?![\w.-])"
            rf"(?:/(?P<rest>[^\s'\":;,()]*[^\s'\":;,().]))?/?"
        )
        _PATTERNS[roots] = pattern
    return pattern


def run_guarded(op: Operation, args: Any, ctx: Context) -> dict[str, Any]:
    """The operation, with every problem that is not the policy's own as a structured error."""
    try:
        return op.handler(ctx, args)
    except RepoError as exc:
        return error("repository", exc.message, exc.hint)
    except EnvironmentProblem as exc:
        return error("environment", exc.message, exc.remedy)
    except ReferenceMissing as exc:
        return error("environment", str(exc), "run schedc from a source checkout")
    except (ValueError, OSError) as exc:
        return error("invalid_request", str(exc), None)
    except Exception as exc:  # a bug: reported, never fatal to the server
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        return error("internal", f"{op.name} failed: {type(exc).__name__}: {exc} ({where})", _BUG)


def _read_progress(
    proc: subprocess.Popen[bytes] | ZygoteJob, progress: Progress | None, tail: list[str]
) -> None:
    assert proc.stderr is not None
    for raw in proc.stderr:
        line = raw.decode("utf-8", "replace").rstrip()
        if line.startswith("progress: "):
            if progress is not None:
                progress(line[len("progress: ") :])
        elif line:
            tail.append(line)
            del tail[:-20]


def _signal_name(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
