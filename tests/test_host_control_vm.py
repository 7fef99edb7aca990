"""`schedc run`, `schedc status` and `schedc stop` on a real sched_ext kernel: the sandbox
guest is the "host" these commands control. One boot runs the whole story as the guest's root
(and once as nobody), each command's JSON and exit status kept in the shared folder; the
kernel's own files (/sys/kernel/sched_ext) are read beside them, so schedc's account is checked
against the kernel's, not against itself.

Nothing here attaches to the machine that runs the tests: the host part only checks that
`run` refuses on a kernel without sched_ext, and only where this machine has none.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schedc.compiler.pipeline import compile_policy
from schedc.verifier.sandbox import boot_guest, guest_outdir
from tests.conftest import ROOT, needs_sandbox

EXAMPLES = ROOT / "examples"
SYSTEM_PYTHON = "/usr/bin/python3"

# (step, command line after `schedc`); `@nobody` runs it as user nobody, `!` is shell.
STORY: list[tuple[str, str]] = [
    ("status0", "status --format json"),
    ("nobody", "@nobody run fifo --format json"),
    ("badset", "run ljf --set slice=banana --format json"),
    ("run_ljf", "run ljf --set slice=5ms --format json"),
    ("status1", "status --format json"),
    ("ops1", "!cat /sys/kernel/sched_ext/root/ops"),
    ("run_busy", "run fifo --format json"),
    ("run_replace", "run fifo@v1 --replace --format json"),
    ("ops2", "!cat /sys/kernel/sched_ext/root/ops"),
    ("sysrq", "!echo S > /proc/sysrq-trigger; sleep 2; cat /sys/kernel/sched_ext/state"),
    ("status_stale", "status --format json"),
    ("run_again", "run ljf --format json"),
    ("stop", "stop --format json"),
    ("state_stopped", "!cat /sys/kernel/sched_ext/state; ls /sys/fs/bpf/schedc-run | wc -l"),
    ("stop_nothing", "stop --format json"),
    ("foreign", "!$BPFTOOL struct_ops register $O/foreign.bpf.o /sys/fs/bpf/foreign"),
    ("status_foreign", "status --format json"),
    ("stop_refused", "stop --format json"),
    ("state_refused", "!cat /sys/kernel/sched_ext/state"),
    ("stop_force", "stop --force --format json"),
    ("state_forced", "!cat /sys/kernel/sched_ext/state"),
    ("status_human", "status"),
    # Planted records: one naming a folder outside schedc's pins, one that is not JSON.
    ("plant", "!mkdir -p $O/canary /run/schedc && echo keep > $O/canary/file && printf "
     "'{\"policy\": \"x\", \"ops\": \"x\", \"attached_at\": \"t\", \"pin\": \"%s/canary\"}' \"$O\" "
     "> /run/schedc/attached.json"),
    ("status_planted", "status --format json"),
    ("stop_planted", "stop --format json"),
    ("after_planted", "!cat $O/canary/file; ls /run/schedc | wc -l"),
    ("garbage", "!echo '{not json' > /run/schedc/attached.json"),
    ("status_garbage", "status --format json"),
    ("stop_garbage", "stop --format json"),
    ("after_garbage", "!ls /run/schedc | wc -l"),
]  # fmt: skip


def _schedc(args: str, home: str) -> str:
    return (
        f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME={home} SCHEDC_REPO=$R "
        f"SCHEDC_BPFTOOL=$BPFTOOL SCHEDC_CACHE={home}/cache "
        f"{shlex.quote(sys.executable)} -m schedc {args}"
    )


def _as_nobody(args: str) -> str:
    """schedc for user nobody: the system's python3 with a copy of this checkout's package in
    the shared folder ($O/src, made by the fixture). The checkout and its virtualenv may sit in a
    folder nobody cannot enter (CI's mktemp -d); `run` refuses a non-root user before it needs
    any third-party package, and this shows that too."""
    return f"env -i PATH=/usr/bin:/bin HOME=$O/home PYTHONPATH=$O/src {SYSTEM_PYTHON} -m schedc {args}"


def _script(outdir: Path, repo: Path, bpftool: str) -> str:
    lines = [
        "#!/bin/sh",
        f"O={shlex.quote(str(outdir))}; R={shlex.quote(str(repo))}; BPFTOOL={shlex.quote(bpftool)}",
        "export O R BPFTOOL",
        "mount -t bpf bpf /sys/fs/bpf 2>/dev/null",
        f"cd {shlex.quote(str(ROOT))}",
        "mkdir -p $O/home && chmod 777 $O $O/home",
    ]
    for step, command in STORY:
        if command.startswith("!"):
            line = command[1:]
        elif command.startswith("@nobody "):
            line = "cd $O && setpriv --reuid=65534 --regid=65534 --clear-groups " + _as_nobody(
                command.removeprefix("@nobody ")
            )
        else:
            line = _schedc(command, "$O/home")
        lines.append(f"( {line} ) > $O/{step}.out 2> $O/{step}.err; echo $? > $O/{step}.rc")
    lines.append("touch $O/done")
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "schedc", *cmd], capture_output=True, text=True, check=False, **kw
    )


@pytest.fixture(scope="module")
def story(settings, tmp_path_factory):
    """The story's outputs: {step: (exit status, stdout, stderr)}."""
    needs_sandbox(settings)
    outdir = guest_outdir(settings, "schedc-hostctl-")
    repo = outdir / "repo"
    env = {**os.environ, "SCHEDC_REPO": str(repo)}
    for args in (
        ["repo", "init"],
        ["repo", "add", str(EXAMPLES / "fifo.sched"), "--unverified"],
        ["repo", "add", str(EXAMPLES / "ljf.sched"), "--unverified"],
    ):
        proc = _run(args, env=env)
        assert proc.returncode == 0, proc.stderr
    # v2 of fifo: the same policy with one more comment, so that @v1 names an older commit.
    v2 = outdir / "fifo.sched"
    v2.write_text((EXAMPLES / "fifo.sched").read_text() + "# version 2\n")
    proc = _run(["repo", "add", str(v2), "--unverified"], env=env)
    assert proc.returncode == 0, proc.stderr
    if not Path(SYSTEM_PYTHON).is_file():
        pytest.fail(
            f"{SYSTEM_PYTHON} is missing: the run as nobody needs it (apt-get install python3)"
        )
    shutil.copytree(ROOT / "schedc", outdir / "src" / "schedc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in [outdir / "src", *(outdir / "src").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    # The foreign scheduler: compiled here, attached in the guest by bpftool, not by schedc.
    built = compile_policy(EXAMPLES / "vtime_fair.sched", settings, out=outdir / "foreign.bpf.o")
    assert built.ok, built.diagnostics
    # The guest's schedc compiles against the guest kernel's BTF, the kit's: its vmlinux.h and
    # precompiled header, made here, are in the cache the guest uses (clang is slow under TCG).
    cache = settings.with_overrides(cache_dir=str(outdir / "home" / "cache"))
    for name in ("fifo", "ljf"):
        assert compile_policy(EXAMPLES / f"{name}.sched", cache, out=outdir / "x.o").ok
    script = outdir / "story.sh"
    script.write_text(_script(outdir, repo, settings.bpftool or "bpftool"))
    script.chmod(0o755)
    rc = boot_guest(settings, outdir, script, 900, lambda _m: None)
    assert (outdir / "done").exists(), f"the guest did not finish (vng: {rc})"
    out = {}
    for step, _ in STORY:
        out[step] = (
            int((outdir / f"{step}.rc").read_text()),
            (outdir / f"{step}.out").read_text(),
            (outdir / f"{step}.err").read_text(),
        )
    yield out
    shutil.rmtree(outdir, ignore_errors=True)


def _json(story, step: str) -> dict[str, object]:
    rc, out, err = story[step]
    try:
        data = json.loads(out)
    except ValueError:
        raise AssertionError(f"{step}: exit {rc}, no JSON: {out!r} {err!r}") from None
    assert list(data)[:6] == ["schedc", "command", "ok", "error", "diagnostics", "results"]
    return data


def _status(story, step: str) -> dict[str, object]:
    data = _json(story, step)
    assert story[step][0] == 0 and data["ok"] is True, data
    (result,) = data["results"]
    return result


@pytest.mark.vm
def test_status_on_an_idle_kernel_says_nothing_is_attached(story):
    s = _status(story, "status0")
    assert s["sched_ext"] is True and s["state"] == "disabled" and s["owner"] == "none"
    assert s["ops"] is None and s["attached_by_schedc"] is None


@pytest.mark.vm
def test_run_needs_root(story):
    data = _json(story, "nobody")
    assert story["nobody"][0] == 2 and data["ok"] is False
    assert "root" in data["error"]["message"]


@pytest.mark.vm
def test_a_bad_param_value_is_the_policy_error_and_attaches_nothing(story):
    data = _json(story, "badset")
    assert story["badset"][0] != 0 and data["ok"] is False
    assert "slice" in json.dumps(data["diagnostics"]) + json.dumps(data["error"])


@pytest.mark.vm
def test_run_attaches_the_stored_policy_and_status_agrees_with_the_kernel(story):
    data = _json(story, "run_ljf")
    assert story["run_ljf"][0] == 0, data
    s = _status(story, "status1")
    kernel_ops = story["ops1"][1].strip()
    assert s["state"] == "enabled" and s["owner"] == "schedc"
    assert s["ops"] == kernel_ops and kernel_ops  # the kernel's name, not a guess
    mine = s["attached_by_schedc"]
    assert mine["policy"] == "ljf" and mine["params"] == {"slice": "5ms"}
    assert mine["ops"] == kernel_ops and len(mine["commit"]) == 40


@pytest.mark.vm
def test_run_refuses_while_a_scheduler_is_attached_and_replace_swaps_it(story):
    data = _json(story, "run_busy")
    assert story["run_busy"][0] == 2 and "already attached" in data["error"]["message"]
    assert "--replace" in data["error"]["hint"]
    data = _json(story, "run_replace")
    assert story["run_replace"][0] == 0, data
    (s,) = data["results"]
    assert s["attached_by_schedc"]["policy"] == "fifo@v1"
    assert s["ops"] == story["ops2"][1].strip() != story["ops1"][1].strip()
    assert s["attached_by_schedc"]["version"] == 1


@pytest.mark.vm
def test_a_scheduler_the_kernel_dropped_is_not_reported_as_running(story):
    assert story["sysrq"][1].strip() == "disabled"
    s = _status(story, "status_stale")
    assert s["state"] == "disabled" and s["owner"] == "none"
    assert s["attached_by_schedc"] is None and s["stale_record"]["policy"] == "fifo@v1"
    assert "sysrq" in (s["exit_reason"] or "").lower(), s["exit_reason"]
    # The next run forgets the stale record (and its pin) and attaches.
    (again,) = _json(story, "run_again")["results"]
    assert story["run_again"][0] == 0 and again["attached_by_schedc"]["policy"] == "ljf"
    assert again["stale_record"] is None


@pytest.mark.vm
def test_stop_detaches_and_leaves_no_pin(story):
    data = _json(story, "stop")
    assert story["stop"][0] == 0, data
    (s,) = data["results"]
    assert s["stopped"] == story["ops1"][1].strip() and s["state"] == "disabled"
    state, pins = story["state_stopped"][1].split()
    assert state == "disabled" and pins == "0"
    (again,) = _json(story, "stop_nothing")["results"]
    assert story["stop_nothing"][0] == 0 and again["stopped"] is None


@pytest.mark.vm
def test_another_tools_scheduler_is_left_alone_unless_forced(story):
    assert story["foreign"][0] == 0, story["foreign"]
    s = _status(story, "status_foreign")
    assert s["state"] == "enabled" and s["owner"] == "other" and s["attached_by_schedc"] is None
    data = _json(story, "stop_refused")
    assert story["stop_refused"][0] == 2 and "not attached by schedc" in data["error"]["message"]
    assert story["state_refused"][1].strip() == "enabled"
    data = _json(story, "stop_force")
    assert story["stop_force"][0] == 0, data
    assert story["state_forced"][1].strip() == "disabled"
    assert "disabled" in story["status_human"][1]


@pytest.mark.vm
def test_planted_records_are_never_trusted_nor_followed(story):
    assert story["plant"][0] == 0, story["plant"]
    s = _status(story, "status_planted")
    assert s["owner"] == "none" and s["attached_by_schedc"] is None
    assert s["stale_record"]["policy"] == "x"
    assert story["stop_planted"][0] == 0
    kept, records = story["after_planted"][1].split()
    assert kept == "keep", "stop removed a folder the record named outside schedc's pins"
    assert records == "0"  # the planted record itself is forgotten
    s = _status(story, "status_garbage")
    assert s["owner"] == "none" and s["stale_record"] is None
    assert story["stop_garbage"][0] == 0 and story["after_garbage"][1].strip() == "0"


def test_run_refuses_on_a_kernel_without_sched_ext(tmp_path):
    if Path("/sys/kernel/sched_ext").exists():
        pytest.skip("this machine's kernel has sched_ext: the refusal cannot be shown here")
    policy = tmp_path / "fifo.sched"
    policy.write_text((EXAMPLES / "fifo.sched").read_text())
    proc = _run(["run", str(policy), "--format", "json"])
    data = json.loads(proc.stdout)
    assert proc.returncode == 2 and data["ok"] is False and data["command"] == "run"
    assert "no sched_ext" in data["error"]["message"]
    assert "verify --run" in data["error"]["hint"]
    status = _run(["status", "--format", "json"])
    (s,) = json.loads(status.stdout)["results"]
    assert status.returncode == 0 and s["sched_ext"] is False and s["owner"] == "none"
