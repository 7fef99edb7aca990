"""`schedc repo …`: the policy repository on the command line.

    schedc repo init|add|list|show|log|diff|search|record|fsck|push|pull|resolve|rm
                [--repo PATH] [--format human|json]

The repository is --repo, else SCHEDC_REPO, else ~/.local/share/schedc/policies. Exit status:
0 success, 1 refused (a policy with errors, a conflict, fsck errors), 2 usage or environment
(no repository, no remote, missing tools). `python -m schedc.repo` runs the same command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import git

from schedc.behaviour.scenario import ScenarioError
from schedc.cli import command_name
from schedc.cli.exit import Exit
from schedc.cli.options import add_btf, add_format, positive_int
from schedc.cli.output import (
    json_envelope,
    output_format,
    print_json,
    usage_error,
    write_diagnostics,
)
from schedc.cli.output import progress as _progress
from schedc.diagnostics import Diagnostic, Severity, has_errors, summary_line
from schedc.repo import render
from schedc.repo.add import AddOptions, add_policy
from schedc.repo.catalog import init_repo, open_store, project_examples, seed
from schedc.repo.entries import Entry, load_entries
from schedc.repo.evidence import ScenarioInput, check_scenarios, load_scenario_file
from schedc.repo.fsck import fsck, repair
from schedc.repo.gitstore import GitStore, RepoError, resolve_location
from schedc.repo.history import policy_diff, policy_log, show_json, show_policy
from schedc.repo.index import Query, SearchIndex, index_path
from schedc.repo.ingest import DEFAULT_RUN_SECONDS, MAX_RUN_SECONDS, RunTest
from schedc.repo.perf import profile_option, read_bench_file, record_performance, with_profile
from schedc.repo.remove import remove_policy
from schedc.repo.sync import pull, push
from schedc.settings import EnvironmentProblem, load_settings
from schedc.verifier.rules.kernel import DEFAULT_TARGET, parse_kernel_version
from schedc.workloads import RUN_LOADS

FSCK_HINT = (
    "`schedc repo fsck` says what is wrong; `schedc repo fsck --repair` undoes what an "
    "interrupted schedc left"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Keep policies with their metadata, verification and performance records "
        "in a git repository; search it; share it through any git remote. See docs/repo.md."
    )
    _common(parser, top=True)
    parser.set_defaults(func=_guarded(lambda _args: _usage(parser)))
    sub = parser.add_subparsers(dest="repo_command", metavar="COMMAND")

    def command(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        _common(p)
        p.set_defaults(func=_guarded(handler))
        return p

    p = command("init", _init, "create the repository (optionally seeded, or cloned)")
    p.add_argument(
        "--seed",
        action="store_true",
        help="add the scx scheduler catalogue and the project's example policies",
    )
    p.add_argument(
        "--examples",
        type=Path,
        metavar="DIR",
        help="example policies to seed from (default: the checkout's examples/, or the copy a wheel ships)",
    )
    p.add_argument(
        "--from",
        dest="clone_from",
        metavar="URL",
        help="clone an existing shared repository instead",
    )

    p = command("add", _add, "compile, check and verify a policy, then commit it")
    p.add_argument("policy", type=Path, metavar="POLICY", help=".sched or .bpf.c file")
    p.add_argument("--name", help="repository name (default: the DSL name or the file name)")
    p.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG")
    p.add_argument(
        "--workload",
        dest="workloads",
        action="append",
        default=[],
        metavar="ID",
        help="a workload the policy is meant for",
    )
    p.add_argument("--description")
    p.add_argument("--parent", metavar="NAME[@REV]", help="the policy this one derives from")
    _who(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--verify",
        dest="verify",
        action="store_const",
        const="always",
        help="require the kernel verifier (host or sandbox); fail without one",
    )
    mode.add_argument(
        "--unverified",
        dest="verify",
        action="store_const",
        const="never",
        help="skip the kernel verifier even if a kernel is at hand",
    )
    p.add_argument(
        "--target-kernel",
        default=None,
        metavar="VERSION",
        help="oldest kernel the policy must load on (default 6.12)",
    )
    p.add_argument(
        "--scenario",
        dest="scenarios",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="also run this behaviour test (schedc test) in the sandbox and store its report "
        "per kernel; repeat for several (one boot for all). A failed expectation is stored "
        "marked failed, and the add exits 1",
    )
    p.add_argument(
        "--runs",
        type=positive_int,
        default=1,
        metavar="N",
        help="runs per side of each --scenario (default 1)",
    )
    p.add_argument(
        "--run",
        dest="run_workload",
        choices=sorted(RUN_LOADS),
        metavar="WORKLOAD",
        help="also attach the policy in the sandbox under this load (as `schedc verify --run`) "
        f"on every kernel and store each run; one of {', '.join(sorted(RUN_LOADS))}. A run "
        "that fails is stored marked failed, and the add exits 1",
    )
    p.add_argument(
        "--run-seconds",
        type=float,
        metavar="S",
        help=f"how long the --run workload runs (default {DEFAULT_RUN_SECONDS:g})",
    )
    add_btf(p, "vmlinux BTF (SCHEDC_BTF)")
    p.set_defaults(verify="auto")

    p = command("list", _list, "list the policies at HEAD")
    p.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG")
    p.add_argument("--kind", choices=("dsl", "c", "catalog"))

    p = command("show", _show, "a policy's metadata, source and records at a revision")
    p.add_argument("spec", metavar="NAME[@REV]", help="REV: a git revision or vN (version N)")
    p.add_argument("--source", action="store_true", help="print only the source")

    p = command("log", _log, "the history of a policy")
    p.add_argument("name", metavar="NAME")

    p = command("diff", _diff, "the changes to a policy between two revisions")
    p.add_argument("name", metavar="NAME")
    p.add_argument("a", metavar="A", help="git revision or vN")
    p.add_argument("b", metavar="B", nargs="?", help="git revision or vN (default HEAD)")

    p = command("search", _search, "ranked full-text search with facets")
    p.add_argument("query", nargs="?", default="", metavar="QUERY")
    p.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG")
    p.add_argument("--workload", metavar="ID")
    p.add_argument("--kernel", metavar="VERSION", help="e.g. 6.12 (matches 6.12.x)")
    p.add_argument(
        "--behaviour-passing",
        action="store_true",
        help="only policies whose behaviour reports (on --kernel, when given) all passed",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="PROFILE.json",
        help="rank policies by how alike the profiles of their performance records are to "
        "this one (`schedc profile -o`); with QUERY, the text's relevance is multiplied by it",
    )
    p.add_argument("--limit", type=int, default=10)

    p = command("record", _record, "append a performance record to a policy")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        metavar="BENCH.json",
        help="records from a JSON file instead of the options below",
    )
    p.add_argument("--workload", metavar="ID")
    p.add_argument("--workload-description")
    p.add_argument("--metric")
    p.add_argument("--value", dest="values", action="append", default=[], metavar="X[,X...]")
    p.add_argument("--unit")
    p.add_argument(
        "--direction", choices=("higher", "lower"), help="which way is better for this metric"
    )
    p.add_argument(
        "--baseline-value", dest="baseline_values", action="append", default=[], metavar="X[,X...]"
    )
    p.add_argument("--baseline-scheduler", metavar="NAME", help="e.g. eevdf, cfs, scx_simple")
    p.add_argument(
        "--tunable",
        dest="tunables",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting the policy ran with",
    )
    p.add_argument("--kernel", help="kernel release it ran on (default: this host's)")
    p.add_argument("--notes")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="PROFILE.json",
        help="the workload profile (`schedc profile -o`) the results were measured under; "
        "kept with every record made, for `repo search --profile`",
    )
    _who(p)

    p = command("fsck", _fsck, "report broken entries, hand edits and uncommitted changes")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also re-translate DSL sources and compare the generated C",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="first undo what an interrupted schedc left: stale git locks, half-written "
        "changes (back to HEAD; committed data and your own edits are kept)",
    )

    for name, handler, text in (
        ("push", _push, "push to a git remote"),
        ("pull", _pull, "fetch and merge from a git remote; conflicting edits are reported"),
    ):
        p = command(name, handler, text)
        p.add_argument("remote", nargs="?", default="origin", metavar="REMOTE")
        p.add_argument("--branch")
    p = command("rm", _rm, "remove a policy (its history stays in git)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--reason", help="why, for the commit message")
    p.add_argument(
        "--force", action="store_true", help="remove it even if other policies name it as parent"
    )
    p = command(
        "resolve",
        _resolve,
        "pull again, settling the named conflicts with one side's version",
    )
    p.add_argument(
        "names", nargs="+", metavar="NAME", help="a conflicting policy, or a file's path"
    )
    side = p.add_mutually_exclusive_group(required=True)
    side.add_argument(
        "--ours",
        dest="side",
        action="store_const",
        const="ours",
        help="keep this repository's version",
    )
    side.add_argument(
        "--theirs",
        dest="side",
        action="store_const",
        const="theirs",
        help="take the remote's version",
    )
    p.add_argument("--remote", default="origin", help="the remote (default origin)")
    p.add_argument("--branch")


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    suffix = "_top" if top else ""
    p.add_argument(
        "--repo",
        dest=f"repo{suffix}",
        metavar="PATH",
        help="repository folder (SCHEDC_REPO; default ~/.local/share/schedc/policies)",
    )
    add_format(p, default=None, dest=f"format{suffix}")


def _who(p: argparse.ArgumentParser) -> None:
    p.add_argument("--author", help="who (default: git's user.name)")
    p.add_argument("--agent", help="the agent or tool that produced it, e.g. a model name")


# -- handlers ----------------------------------------------------------------------------------
def _fmt(args: argparse.Namespace) -> str:
    return output_format(args)


def _store(args: argparse.Namespace, create: bool = False) -> GitStore:
    """The repository; `create`: the default one is created (and seeded) on first use."""
    option = args.repo or args.repo_top
    if create:
        store = open_store(option, load_settings(), _progress)
    else:
        store = GitStore(resolve_location(option))
    args.opened = store  # its notices (what recovery did) are told after the command
    return store


def _out(
    args: argparse.Namespace,
    text: str,
    *,
    results: Iterable[object],
    ok: bool = True,
    diagnostics: Iterable[Diagnostic | dict[str, object]] = (),
    **extra: object,
) -> None:
    """`text` on stdout, or with --format json the envelope (docs/json.md). The rule of every
    subcommand: `results` holds the items it answers with — one per policy, hit or commit for
    list, search and log; the one thing it made, showed or changed as a one-element list for
    the others (init, add, show, diff, record, fsck, push, pull, resolve, rm); `ok` and
    `diagnostics` are the envelope's; what describes the whole answer rather than an item
    (search's query, filters, total, facets, facets_over, skipped, index; log's name) is an
    extra."""
    if _fmt(args) == "json":
        envelope = json_envelope(
            command_name(args), ok=ok, diagnostics=diagnostics, results=results, **extra
        )
        print_json(envelope)
    elif text:
        print(text)


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _item(payload: dict[str, object]) -> dict[str, object]:
    """A result's object less its `ok` and `diagnostics`, which go to the envelope's places."""
    return {k: v for k, v in payload.items() if k not in ("ok", "diagnostics")}


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return Exit.USAGE


def _init(args: argparse.Namespace) -> int:
    store = init_repo(args.repo or args.repo_top, args.clone_from)
    made: dict[str, object] = {"repo": str(store.root), "head": store.head()}
    text = f"initialised {store.root}" if not args.clone_from else f"cloned into {store.root}"
    if args.seed:
        examples = args.examples or project_examples()
        result = seed(store, load_settings(), examples, _progress)
        made["seed"] = result.to_json()
        made["head"] = store.head()
        text += "\n" + render.seeded(result)
    _out(args, text, results=[made])
    return Exit.OK


def _add(args: argparse.Namespace) -> int:
    target = parse_kernel_version(args.target_kernel) if args.target_kernel else DEFAULT_TARGET
    scenarios, problems = _scenarios(args.scenarios)
    if problems:  # before the repository, the compiler or the VM is touched
        if _fmt(args) == "json":
            _out(
                args,
                "",
                results=(),
                ok=False,
                diagnostics=problems,
                error="not added: a scenario file has errors",
            )
        else:
            write_diagnostics(problems, sys.stderr)
        return Exit.USAGE
    run_test = None
    if args.run_seconds is not None and args.run_workload is None:
        return usage_error("--run-seconds needs --run WORKLOAD", args)
    if args.run_workload is not None:
        seconds = DEFAULT_RUN_SECONDS if args.run_seconds is None else args.run_seconds
        if not 0 < seconds <= MAX_RUN_SECONDS:
            return usage_error(
                f"--run-seconds takes a number of seconds in (0, {MAX_RUN_SECONDS}]", args
            )
        if args.verify == "never":
            return usage_error(
                "--run attaches the verified policy: it cannot go with --unverified", args
            )
        run_test = RunTest(args.run_workload, seconds)
    store = _store(args)
    options = AddOptions(
        name=args.name,
        tags=args.tags,
        workloads=args.workloads,
        description=args.description,
        parent=args.parent,
        author=args.author,
        agent=args.agent,
        verify=args.verify,
        target_kernel=target,
        scenarios=scenarios,
        runs=args.runs,
        run_test=run_test,
    )
    result = add_policy(store, args.policy, load_settings(btf=args.btf), options, _progress)
    if _fmt(args) == "json":
        _out(
            args,
            "",
            results=[_item(result.to_json())],
            ok=result.ok,
            diagnostics=result.diagnostics,
        )
    else:
        write_diagnostics(result.diagnostics, sys.stderr)
        summary = summary_line(result.diagnostics)
        if summary:
            print(summary, file=sys.stderr)
        print(render.added(result))
    return Exit.OK if result.ok else Exit.ERRORS


def _scenarios(paths: list[Path]) -> tuple[list[ScenarioInput], list[Diagnostic]]:
    """The --scenario files, parsed; or every problem with them (at their lines)."""
    scenarios, problems = [], []
    for path in paths:
        try:
            scenarios.append(load_scenario_file(path))
        except ScenarioError as exc:
            problems += exc.diagnostics
    if not problems:
        try:
            check_scenarios(scenarios)
        except ValueError as exc:
            problems.append(Diagnostic(Severity.ERROR, "T003", str(exc), str(paths[-1])))
    return scenarios, problems


def _warn_broken(entries: list[Entry]) -> None:
    for e in entries:
        if not e.ok:
            path, what = e.problems[0] if e.problems else (e.name, "unreadable")
            print(f"schedc repo: warning: skipped {e.name}: {path}: {what}", file=sys.stderr)


def _list(args: argparse.Namespace) -> int:
    entries = load_entries(_store(args))
    _warn_broken(entries)
    if args.tags:
        entries = [e for e in entries if e.meta and set(args.tags) <= set(e.meta.tags)]
    if args.kind:
        entries = [e for e in entries if e.meta and e.meta.kind == args.kind]
    listed = [
        {
            "name": e.name,
            "ok": e.ok,  # the entry's files are whole (a broken one is listed with its problems)
            "kind": e.meta.kind if e.meta else None,
            "version": e.meta.version if e.meta else None,
            "description": e.meta.description if e.meta else None,
            "tags": e.meta.tags if e.meta else [],
            "verification": e.meta.verification.status if e.meta and e.meta.verification else None,
            "records": len(e.records),
            "problems": [{"path": p, "problem": w} for p, w in e.problems],
        }
        for e in entries
    ]
    _out(args, render.listing(entries), results=listed)
    return Exit.OK


def _show(args: argparse.Namespace) -> int:
    entry, sha = show_policy(_store(args), args.spec)
    payload = show_json(entry, sha)
    if args.source and _fmt(args) == "human":
        source = payload["source"]
        if source is None:
            raise RepoError(f"'{entry.name}' has no source (a catalogue entry?)")
        sys.stdout.write(str(source))
        return Exit.OK
    _out(args, render.shown(entry, sha), results=[payload])  # its ok: the entry is whole
    return Exit.OK


def _log(args: argparse.Namespace) -> int:
    entries = policy_log(_store(args), args.name)
    _out(args, render.log(entries), results=[e.to_json() for e in entries], name=args.name)
    return Exit.OK


def _diff(args: argparse.Namespace) -> int:
    text = policy_diff(_store(args), args.name, args.a, args.b)
    _out(args, text, results=[{"name": args.name, "diff": text}])
    return Exit.OK


def _search(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise RepoError("--limit must be at least 1", exit_code=2)
    profile = profile_option(args.profile).shape if args.profile else None
    store = _store(args, create=True)
    index = SearchIndex(store, index_path(load_settings(), store.root))
    try:
        query = Query(
            args.query,
            args.tags,
            args.workload,
            args.kernel,
            args.limit,
            behaviour_passing=args.behaviour_passing,
            profile=profile,
        )
        payload = index.search(query)
    finally:
        index.close()
    skipped = payload.get("skipped")
    for item in skipped if isinstance(skipped, list) else []:
        print(f"schedc repo: warning: skipped {item['name']}: {item['problem']}", file=sys.stderr)
    about = {k: v for k, v in _item(payload).items() if k != "results"}  # query, facets, ...
    _out(args, render.search(payload), results=_as_list(payload["results"]), **about)
    return Exit.OK


def _record(args: argparse.Namespace) -> int:
    profile = profile_option(args.profile) if args.profile else None  # before anything else
    store = _store(args)
    if args.from_file:
        given = read_bench_file(args.from_file, args.name)
    else:
        missing = [
            o
            for o, v in (
                ("--workload", args.workload),
                ("--metric", args.metric),
                ("--value", args.values),
                ("--direction", args.direction),
            )
            if not v
        ]
        if missing:
            raise RepoError(
                f"record needs {', '.join(missing)} (or --from BENCH.json)", exit_code=2
            )
        given = [
            {
                "workload": args.workload,
                "workload_description": args.workload_description,
                "metric": args.metric,
                "unit": args.unit,
                "direction": args.direction,
                "values": _numbers(args.values, "--value"),
                "baseline_values": _numbers(args.baseline_values, "--baseline-value"),
                "baseline_scheduler": args.baseline_scheduler,
                "tunables": _pairs(args.tunables),
                "kernel": args.kernel,
                "notes": args.notes,
            }
        ]
    given = with_profile(given, profile)
    result = record_performance(store, args.name, given, author=args.author, agent=args.agent)
    _out(args, render.recorded(result), results=[_item(result.to_json())])
    return Exit.OK


def _numbers(items: list[str], option: str) -> list[float]:
    try:
        return [float(x) for item in items for x in item.split(",") if x.strip()]
    except ValueError:
        raise RepoError(f"{option} takes numbers, e.g. {option} 12.5,12.7", exit_code=2) from None


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RepoError(f"--tunable takes NAME=VALUE, not '{item}'", exit_code=2)
        out[key] = value
    return out


def _fsck(args: argparse.Namespace) -> int:
    store = _store(args)
    repaired = repair(store) if args.repair else []
    store.notices.clear()  # told here, as what --repair did
    found, count = fsck(store, deep=args.deep)
    if _fmt(args) == "json":
        checked = {"policies": count, "repaired": repaired}
        _out(args, "", results=[checked], ok=not has_errors(found), diagnostics=found)
    else:
        for done in repaired:
            print(f"repaired: {done}")
        if args.repair and not repaired:
            print("repaired: nothing to undo")
        write_diagnostics(found, sys.stdout)
        print(
            summary_line(found)
            or f"checked {count} polic{'y' if count == 1 else 'ies'}: no problems found."
        )
    return Exit.ERRORS if has_errors(found) else Exit.OK


def _push(args: argparse.Namespace) -> int:
    result = push(_store(args), args.remote, args.branch)
    _out(args, render.synced(result), results=[_item(result.to_json())], ok=result.ok)
    return Exit.OK


def _pull(args: argparse.Namespace) -> int:
    result = pull(_store(args), args.remote, args.branch)
    _out(args, render.synced(result), results=[_item(result.to_json())], ok=result.ok)
    return Exit.OK if result.ok else Exit.ERRORS


def _rm(args: argparse.Namespace) -> int:
    removed = remove_policy(_store(args), args.name, force=args.force, reason=args.reason)
    text = f"removed {removed.name} ({len(removed.files)} files) in {removed.commit[:12]}"
    if removed.orphans:
        text += f"\n  its children keep their lineage: {', '.join(removed.orphans)}"
    _out(args, text, results=[_item(removed.to_json())])
    return Exit.OK


def _resolve(args: argparse.Namespace) -> int:
    result = pull(_store(args), args.remote, args.branch, take={n: args.side for n in args.names})
    _out(args, render.synced(result), results=[_item(result.to_json())], ok=result.ok)
    return Exit.OK if result.ok else Exit.ERRORS


# -- entry points ------------------------------------------------------------------------------
Handler = Callable[[argparse.Namespace], int]


def _guarded(handler: Handler) -> Handler:
    """Problems become messages and exit codes, never tracebacks (also under `schedc repo`,
    whose front end only knows EnvironmentProblem)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except RepoError as problem:
            return _problem(args, problem.message, problem.hint, problem.exit_code)
        except EnvironmentProblem as problem:
            return _problem(args, problem.message, problem.remedy, Exit.USAGE)
        except ValueError as exc:  # e.g. an invalid --target-kernel
            return _problem(args, str(exc), None, Exit.USAGE)
        except git.GitError as exc:  # a backstop: the store turns git's failures into RepoError
            said = getattr(exc, "stderr", None) or str(exc)
            return _problem(args, f"git failed: {said.strip()}", FSCK_HINT, Exit.ERRORS)
        except OSError as exc:
            return _problem(args, str(exc), None, Exit.USAGE)
        except RecursionError:  # a backstop: every reader bounds what it parses
            return _problem(args, "input nested too deeply", FSCK_HINT, Exit.ERRORS)
        finally:
            opened = getattr(args, "opened", None)
            for notice in opened.notices if opened is not None else []:
                _progress(notice)

    return run


def _problem(args: argparse.Namespace, message: str, hint: str | None, code: int) -> int:
    if _fmt(args) == "json":
        print_json(json_envelope(command_name(args), ok=False, error=message, hint=hint))
    else:
        print(f"schedc repo: error: {message}", file=sys.stderr)
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
    return code
