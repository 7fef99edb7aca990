"""Calling an operation safely: arguments validated, errors structured, heavy work isolated.

`Runner.call(name, arguments)` never raises for anything an agent sends. Operations that run
clang, libclang or the VM run in a worker process (`python -m schedc.agent.worker`) in its own
session, with a wall-clock limit (the whole process group is killed when it is exceeded) and,
for compile and check, an address-space limit; a source that makes clang loop or eat memory
costs one worker. Fast operations (search, get, record, reference) run in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schedc.agent.operations import (
    OPERATIONS,
    Context,
    Operation,
    Progress,
    error,
    source_key,
)
from schedc.agent.reference import ReferenceMissing
from schedc.compiler.cage import COMPILE_TIMEOUT, MEMORY_BYTES
from schedc.repo.entries import describe
from schedc.repo.gitstore import RepoError
from schedc.settings import EnvironmentProblem, load_settings

DEFAULT_COMPILE_TIMEOUT = COMPILE_TIMEOUT  # the limits of every sandboxed clang run too
DEFAULT_VERIFY_TIMEOUT = 900.0
WORKER_MEMORY_BYTES = MEMORY_BYTES  # address space of a compile or check worker
MAX_RESULT_BYTES = 16 * 1024 * 1024
MAX_REMEMBERED = 64  # passing verifications kept per runner


@dataclass
class Limits:
    compile_timeout: float = DEFAULT_COMPILE_TIMEOUT  # compile_policy, check_policy
    verify_timeout: float = DEFAULT_VERIFY_TIMEOUT  # verify_policy, submit_policy (VM boots)
    memory_bytes: int | None = WORKER_MEMORY_BYTES


@dataclass
class Runner:
    repo: Path | None = None
    overrides: dict[str, str | None] = field(default_factory=dict)  # settings, e.g. btf
    limits: Limits = field(default_factory=Limits)
    isolate: bool = True
    # Passing verify_policy results of this session, by source and kernel: a later
    # submit_policy of the same source records one instead of booting the kernel again.
    verified: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # MCP tool calls run in parallel threads.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call(
        self, name: str, arguments: dict[str, Any] | None, progress: Progress | None = None
    ) -> dict[str, Any]:
        op = OPERATIONS.get(name)
        if op is None:
            return error(
                "unknown_tool",
                f"there is no tool named '{name}'",
                f"the tools are: {', '.join(OPERATIONS)}",
            )
        if arguments is not None and not isinstance(arguments, dict):
            return error("invalid_arguments", "the arguments must be a JSON object")
        try:
            args = op.args.model_validate(arguments or {})
        except ValidationError as exc:
            return error("invalid_arguments", describe(exc), f"see the input schema of {name}")
        prior = None
        if op.name == "submit_policy" and args.verify != "never":  # type: ignore[attr-defined]
            key = self._verified_key(args)
            with self._lock:
                prior = self.verified.get(key)
        if op.isolated and self.isolate:
            result = self._in_worker(op, args.model_dump(mode="json"), progress, prior)
        else:
            ctx = self.context(progress)
            ctx.prior_verification = prior
            result = run_guarded(op, args, ctx)
        if op.name == "verify_policy" and result.get("ok") is True and "source_key" in result:
            key = (result["source_key"], self._kernel_identity())
            with self._lock:
                self.verified[key] = result
                while len(self.verified) > MAX_REMEMBERED:
                    del self.verified[next(iter(self.verified))]  # the oldest
        return result

    def _verified_key(self, args: Any) -> tuple[str, str]:
        return source_key(args.language, args.source), self._kernel_identity()

    def _kernel_identity(self) -> str:
        """The sandbox kernel as it is on disk now: a replaced bzImage is another kernel."""
        kernel = load_settings(**self.overrides).kernel or ""
        try:
            st = os.stat(kernel)
        except OSError:
            return kernel
        return f"{kernel}:{st.st_size}:{st.st_mtime_ns}"

    def context(self, progress: Progress | None = None) -> Context:
        settings = load_settings(**self.overrides)
        return Context(self.repo, settings, progress or (lambda _m: None))

    def timeout(self, op: Operation) -> float:
        return self.limits.verify_timeout if op.slow else self.limits.compile_timeout

    def _in_worker(
        self,
        op: Operation,
        arguments: dict[str, Any],
        progress: Progress | None,
        prior: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request = {
            "op": op.name,
            "arguments": arguments,
            "prior_verification": prior,
            "repo": str(self.repo) if self.repo else None,
            "overrides": self.overrides,
            "memory_bytes": None if op.slow else self.limits.memory_bytes,
        }
        limit = self.timeout(op)
        started = time.monotonic()
        # The answer goes to a file and only the reader thread reads stderr: with two readers
        # on one pipe (communicate() reads stderr too) progress lines went missing.
        with tempfile.TemporaryFile() as answer:
            proc = subprocess.Popen(
                [sys.executable, "-m", "schedc.agent.worker"],
                stdin=subprocess.PIPE,
                stdout=answer,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: clang and QEMU die with it
            )
            tail: list[str] = []
            reader = threading.Thread(
                target=_read_progress, args=(proc, progress, tail), daemon=True
            )
            reader.start()
            timed_out = False
            try:
                assert proc.stdin is not None
                try:
                    proc.stdin.write(json.dumps(request).encode())
                    proc.stdin.close()
                except BrokenPipeError:  # it died before reading: its status says why
                    pass
                proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)  # the worker, and whatever it left running
                proc.wait()
                reader.join(timeout=5)
            answer.seek(0)
            out = answer.read(MAX_RESULT_BYTES + 1)
        if timed_out:
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
        return error(
            "internal",
            f"{op.name} failed: {type(exc).__name__}: {exc} ({where})",
            "this is a schedc bug; please report it with the arguments",
        )


def _read_progress(
    proc: subprocess.Popen[bytes], progress: Progress | None, tail: list[str]
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


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _signal_name(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
