"""Hostile C through every interface: nothing of a host file reaches the output.

A canary file with a random identifier stands for /etc/shadow. Each case is one way a policy
can name it that a text scan of `#` directives missed (digraphs, splices, CR line ends, macros,
a symlink, #line). Through `schedc compile` (human and JSON), `schedc check`, the agents'
compile and check operations and `schedc repo add`, every case must be refused, no object may
be written, and the canary's text may appear in no output and no file. Then the sandbox on its
own: clang run directly, with the token rules bypassed, cannot see the canary.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from schedc.agent.runner import Runner
from schedc.compiler import cage
from schedc.compiler.toolchain import Toolchain, compile_c
from schedc.diagnostics import render_human
from tests import test_repo_support as support
from tests.conftest import ROOT
from tests.test_repo_support import cli as repo_cli
from tests.test_repo_support import commit_count

repo_env = support.repo_env
store = support.store  # fixtures

INCLUDE = ROOT / "tests" / "data" / "check" / "include"
TAIL = '\nchar _license[] SEC("license") = "GPL";\n'

# {canary}: the canary's absolute path. Every case would read it (or build what the rules
# forbid) if clang ran on the host as the text scan let it.
CASES: dict[str, str] = {
    "digraph_embed": 'const char leak[] = {\n%:embed "{canary}"\n, 0};\n',
    "digraph_include": '%:include "{canary}"\n',
    "has_embed": '#if __has_embed("{canary}")\nstatic const char leak[] = {\n#embed "{canary}"\n};\n#endif\n',
    "splice_space": '#inc\\ \nlude "{canary}"\n',
    "splice_crlf": '#inc\\\r\nlude "{canary}"\r\n',
    "lone_cr": 'int a;\r#include "{canary}"\rint b;\r',
    "macro_pragma": '#define P(x) _Pragma(#x)\nP(GCC dependency "{canary}")\n',
    "pasted_asm": '#define A(x) __as##x\nvoid f(void) { A(m__)("r0 = 0"); }\n',
    "absolute_include": '#include "{canary}"\n',
    "symlink_include": '#include "settings_link.h"\n',
    "line_names_canary": '#line 1 "{canary}"\nint f(void) { return undeclared_thing; }\n',
}
NEEDS_INCLUDE_DIR = {"symlink_include"}


@dataclass
class Host:
    secret: str
    canary: Path
    work: Path
    inc: Path
    root: Path

    def policy(self, case: str) -> Path:
        path = self.work / f"{case}.bpf.c"
        body = CASES[case].replace("{canary}", str(self.canary))
        path.write_bytes(('#include "check_test.h"\n' + body + TAIL).encode())
        return path

    def assert_nothing_leaked(self, *outputs: str, cache: str | None = None) -> None:
        for text in outputs:
            assert self.secret not in text
        folders = [self.root] + ([Path(cache)] if cache else [])
        for folder in folders:
            for path in folder.rglob("*"):
                if path == self.canary or path.is_symlink() or not path.is_file():
                    continue
                assert self.secret.encode() not in path.read_bytes(), f"{path} has the canary"


@pytest.fixture
def host(tmp_path: Path) -> Host:
    secret = f"schedc_canary_{secrets.token_hex(12)}"
    hidden = tmp_path / "host"
    hidden.mkdir()
    canary = hidden / "canary.txt"
    canary.write_text(f"{secret}\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "settings_link.h").symlink_to(canary)
    return Host(secret, canary, work, inc, tmp_path)


def schedc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT))
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "schedc", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full,
        timeout=600,
        check=False,
    )


def cache_env(settings) -> dict[str, str]:
    return {"SCHEDC_CACHE": settings.cache_dir} if settings.cache_dir else {}


@pytest.mark.parametrize("case", sorted(CASES))
def test_schedc_compile_refuses_and_shows_nothing(toolchain, settings, host: Host, case: str):
    policy = host.policy(case)
    out = host.work / "out.bpf.o"
    flags = ["-I", str(INCLUDE), "-I", str(host.inc)]
    human = schedc("compile", str(policy), "-o", str(out), *flags, env=cache_env(settings))
    as_json = schedc(
        "compile", str(policy), "-o", str(out), *flags, "--format", "json", env=cache_env(settings)
    )
    assert human.returncode == 1, human.stderr
    assert as_json.returncode == 1, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["ok"] is False and payload["results"][0]["object"] is None
    assert [d["code"] for d in payload["diagnostics"] if d["severity"] == "error"]
    assert not out.exists()
    assert not list(host.work.glob(".out.bpf.o.*"))
    host.assert_nothing_leaked(
        human.stdout, human.stderr, as_json.stdout, as_json.stderr, cache=settings.cache_dir
    )


def test_schedc_check_refuses_every_case(toolchain, settings, host: Host):
    policies = [str(host.policy(case)) for case in sorted(CASES)]
    flags = ["-I", str(INCLUDE), "-I", str(host.inc)]
    as_json = schedc("check", *flags, "--format", "json", *policies, env=cache_env(settings))
    human = schedc("check", *flags, *policies, env=cache_env(settings))
    assert as_json.returncode == 1, as_json.stderr
    assert human.returncode == 1, human.stderr
    errors = {
        Path(d["file"]).name
        for d in json.loads(as_json.stdout)["diagnostics"]
        if d["severity"] == "error" and d["file"]
    }
    assert errors >= {Path(p).name for p in policies}, "every case has an error"
    host.assert_nothing_leaked(
        as_json.stdout, as_json.stderr, human.stdout, human.stderr, cache=settings.cache_dir
    )


def test_agent_compile_and_check_refuse_and_show_nothing(toolchain, settings, host: Host):
    overrides = {"cache_dir": settings.cache_dir}
    in_process = Runner(overrides=overrides, isolate=False)
    for case in sorted(set(CASES) - NEEDS_INCLUDE_DIR):
        source = (
            host.policy(case)
            .read_text(encoding="utf-8")
            .replace('#include "check_test.h"', '#include "schedc_runtime.bpf.h"')
        )
        for op in ("compile_policy", "check_policy"):
            result = in_process.call(op, {"source": source, "language": "c"})
            assert result["ok"] is False, (case, op, result)
            assert result.get("artifacts") is None, (case, op)
            host.assert_nothing_leaked(json.dumps(result))
    # and once through the real worker process the MCP server uses
    worker = Runner(overrides=overrides, isolate=True)
    source = host.policy("digraph_embed").read_text(encoding="utf-8")
    result = worker.call("compile_policy", {"source": source, "language": "c"})
    assert result["ok"] is False and result["artifacts"] is None, result
    host.assert_nothing_leaked(json.dumps(result), cache=settings.cache_dir)


def test_repo_add_refuses_and_commits_nothing(toolchain, settings, host: Host, store):
    before = commit_count(store.root)
    for case in sorted(set(CASES) - NEEDS_INCLUDE_DIR):
        policy = host.policy(case)
        text = policy.read_text(encoding="utf-8").replace(
            '#include "check_test.h"', '#include "schedc_runtime.bpf.h"'
        )
        policy.write_text(text, encoding="utf-8")
        ran = repo_cli("add", str(policy), "--unverified", "--format", "json")
        assert ran.code != 0, (case, ran.out)
        host.assert_nothing_leaked(ran.out, ran.err)
    assert commit_count(store.root) == before
    host.assert_nothing_leaked(cache=settings.cache_dir)
    for path in store.root.rglob("*"):
        if path.is_file():
            assert host.secret.encode() not in path.read_bytes()


# ---- the sandbox itself ---------------------------------------------------------------------


def test_caged_clang_cannot_see_host_files(toolchain: Toolchain, host: Host):
    """compile_c directly: no token rule runs, only the sandbox stands between clang and the
    canary. clang says the file does not exist, and reports at a #line'd host file lose their
    line (rendering them would read it)."""
    assert toolchain.cage.enabled
    policy = host.work / "direct.bpf.c"
    policy.write_text(f'#include "{host.canary}"\n%:embed "{host.canary}"\n', encoding="utf-8")
    out = host.work / "direct.bpf.o"
    diags = compile_c(toolchain, policy, out, use_pch=False)
    assert any("file not found" in d.message for d in diags), diags
    assert not out.exists() and not list(host.work.glob(".direct.bpf.o.*"))
    shown = render_human(diags) + json.dumps([d.to_json() for d in diags])
    host.assert_nothing_leaked(shown)

    policy.write_text(f'#line 1 "{host.canary}"\nint f(void) {{ return nope; }}\n')
    diags = compile_c(toolchain, policy, out, use_pch=False)
    assert diags and all(d.file == str(policy) and d.line is None for d in diags), diags
    host.assert_nothing_leaked(render_human(diags))


def test_the_sandbox_argv_binds_no_host_folder_wholesale(toolchain: Toolchain, host: Host):
    policy = host.policy("absolute_include")
    argv = cage.bwrap_argv("bwrap", toolchain.visible(policy, [INCLUDE]), [host.work], None)
    binds = [argv[i + 2] for i, a in enumerate(argv) if a in ("--ro-bind", "--bind")]
    for forbidden in ("/", "/etc", "/root", "/home", str(ROOT), str(host.root)):
        assert forbidden not in binds
    assert str(policy) in binds and str(host.canary) not in binds
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv


def test_a_broken_bwrap_is_refused_with_exit_2_and_sandbox_off_compiles(
    toolchain, settings, tmp_path: Path
):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'no user namespaces here' >&2\nexit 1\n")
    fake.chmod(0o755)
    policy = tmp_path / "ok.bpf.c"
    policy.write_text(
        (ROOT / "tests" / "data" / "check" / "K063_no_asm_ok.bpf.c").read_text(encoding="utf-8")
    )
    out = tmp_path / "ok.bpf.o"
    env = {**cache_env(settings), "SCHEDC_BWRAP": str(fake)}
    refused = schedc("compile", str(policy), "-I", str(INCLUDE), "-o", str(out), env=env)
    assert refused.returncode == 2, refused.stderr
    assert "bubblewrap" in refused.stderr and "apt-get install bubblewrap" in refused.stderr
    assert "SCHEDC_SANDBOX=off" in refused.stderr
    assert not out.exists()
    as_json = schedc("check", "--format", "json", str(policy), "-I", str(INCLUDE), env=env)
    assert as_json.returncode == 2
    assert "bubblewrap" in json.loads(as_json.stdout)["error"]["message"]

    off = schedc(
        "compile",
        str(policy),
        "-I",
        str(INCLUDE),
        "-o",
        str(out),
        env={**env, "SCHEDC_SANDBOX": "off"},
    )
    assert off.returncode == 0, off.stderr
    assert out.stat().st_size > 1000


def test_the_object_temp_folder_goes_on_keyboard_interrupt(
    toolchain: Toolchain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def interrupted(*_args: object, **_kwargs: object) -> cage.Outcome:
        raise KeyboardInterrupt

    monkeypatch.setattr(cage, "run", interrupted)
    policy = tmp_path / "p.bpf.c"
    policy.write_text("int x;\n")
    with pytest.raises(KeyboardInterrupt):
        compile_c(toolchain, policy, tmp_path / "p.bpf.o", use_pch=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.bpf.c"]


def test_cage_run_kills_the_group_at_the_time_limit(toolchain: Toolchain, tmp_path: Path):
    sleep = os.path.realpath("/bin/sleep")
    started = time.monotonic()
    outcome = cage.run(
        toolchain.cage,
        [sleep, "30"],
        ro=[*cage.library_paths([sleep]), Path(sleep)],
        timeout=1.0,
    )
    assert outcome.timed_out and time.monotonic() - started < 10


def test_one_huge_expression_is_a_clear_error_not_a_segfault(toolchain, settings, tmp_path: Path):
    """libclang crashed (exit 139) on one 20,000-term expression."""
    policy = tmp_path / "deep.bpf.c"
    terms = "+".join(["1"] * 20000)
    policy.write_text(
        '#include "schedc_runtime.bpf.h"\n'
        + TAIL
        + f"int f(void) {{ int x = {terms}; return x; }}\n"
    )
    ran = schedc("check", "--format", "json", str(policy), env=cache_env(settings))
    assert ran.returncode == 1, ran.stderr[-500:]
    codes = [d["code"] for d in json.loads(ran.stdout)["diagnostics"]]
    assert codes == ["K044"]


def test_a_crashed_or_hung_libclang_worker_is_a_finding(
    toolchain: Toolchain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Whatever the token pre-check misses (macros can build huge expressions) and crashes
    libclang is reported as K044 on the policy, not as a crash of schedc."""
    from schedc.verifier import checks  # noqa: PLC0415

    policy = tmp_path / "p.bpf.c"
    policy.write_text("int x;\n")
    for outcome in (cage.Outcome(139, b"", b""), cage.Outcome(-9, b"", b"", timed_out=True)):
        monkeypatch.setattr(cage, "run", lambda *_a, _o=outcome, **_k: _o)
        found = checks.check_c(policy, toolchain)
        assert [(d.code, d.file) for d in found] == [("K044", str(policy))], found


def test_a_file_the_sandbox_hides_is_explained(toolchain: Toolchain, tmp_path: Path):
    """Only *.h files beside the policy are visible to clang: an .inc there is 'not found',
    with a hint that says why, in check and in compile."""
    from schedc.verifier import checks  # noqa: PLC0415

    (tmp_path / "consts.inc").write_text("#define X 1\n")
    policy = tmp_path / "p.bpf.c"
    policy.write_text('#include "schedc_runtime.bpf.h"\n#include "consts.inc"\n' + TAIL)
    checked = checks.check_c(policy, toolchain)
    compiled = compile_c(toolchain, policy, tmp_path / "p.bpf.o", use_pch=False)
    for found in (checked, compiled):
        assert [d.code for d in found] == ["C001"], found
        assert "sandbox" in (found[0].hint or "")
