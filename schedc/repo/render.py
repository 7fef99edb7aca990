"""Human-readable text for `schedc repo` results (JSON comes from each result's to_json)."""

from __future__ import annotations

from schedc.behaviour.report import format_value
from schedc.repo.add import AddResult
from schedc.repo.catalog import SeedResult
from schedc.repo.entries import Entry, verification_of
from schedc.repo.evidence import summary as evidence_summary
from schedc.repo.history import LogEntry
from schedc.repo.models import BehaviourReport, PerformanceRecord, PolicyMeta, RecordProfile
from schedc.repo.perf import RecordResult, summary
from schedc.repo.sync import SyncResult


def short(sha: str | None) -> str:
    return sha[:10] if sha else "-"


def verification_text(meta: PolicyMeta) -> str:
    v = meta.verification
    if meta.kind == "catalog":
        return "catalogue entry"
    if v is None:
        return "no verification record"
    if v.status == "verified":
        return f"verified on {v.kernel} ({v.mode}, {v.insns_processed} insns)"
    return f"unverified: {v.reason}" if v.reason else "unverified"


def run_lines(meta: PolicyMeta) -> list[str]:
    """Each kernel's run test (`repo add --run`): `run on 6.12.117: 5s under 'spin', stayed
    enabled, no workload process died`, or what failed."""
    v = meta.verification
    lines = []
    for k in v.kernels if v else []:
        r = k.run
        if r is None:
            continue
        head = f"  run on {k.kernel}: {r.seconds:g}s under '{r.workload}', "
        if r.ok:
            died = "no workload process died" if r.processes_traced else "exits not traced"
            lines.append(head + f"stayed enabled, {died}")
            continue
        why = []
        if not r.attached:
            why.append(f"did not attach ({r.attach_error})")
        elif not r.enabled_throughout:
            msg = f": {r.exit_message}" if r.exit_message else ""
            why.append(f"ejected by the kernel ({r.exit_reason or 'not enabled throughout'}){msg}")
        if r.failed_count:
            shown = ", ".join(f"{p.comm} (pid {p.pid}) {p.how} by {p.signal}" for p in r.failed)
            more = r.failed_count - len(r.failed)
            why.append(
                f"{r.failed_count} process(es) died: {shown}"
                + (f" and {more} more" if more else "")
            )
        lines.append(head + "FAILED: " + "; ".join(why))
    return lines


def added(result: AddResult) -> str:
    meta = result.meta
    if result.status == "rejected" or meta is None:
        return f"rejected {result.source}: it was not added"
    if result.status == "unchanged":
        return f"unchanged: {meta.name} v{meta.version} already has this source and metadata"
    lines = [
        f"added {meta.name} v{meta.version} as {short(result.commit)} ({verification_text(meta)})"
    ]
    lines += run_lines(meta)
    if result.run_ok is False:
        lines.append("  stored with its run test marked FAILED: the kernel did not keep it running")
    for report in result.behaviour:
        lines.append(f"  behaviour: {evidence_summary(report)}")
    if result.behaviour_ok is False:
        lines.append(
            "  stored marked FAILED: the policy does not do what the scenario expects "
            "(search --behaviour-passing leaves it out)"
        )
    return "\n".join(lines)


def behaviour_lines(reports: list[BehaviourReport]) -> list[str]:
    """Each report: its verdict, then a row per expectation (policy's value beside the
    baseline's)."""
    lines = []
    for r in reports:
        lines.append(
            f"    {evidence_summary(r)}, {r.date:%Y-%m-%d}, scenario {r.scenario_hash[:19]}"
        )
        for e in r.expectations:
            mark = "ok" if e.ok else "FAIL"
            groups = ",".join(e.groups) or "-"
            measured = format_value(e.measured, e.unit)
            baseline = format_value(e.baseline, e.unit)
            lines.append(
                f"      {mark:<4} {e.kind:<11} {groups:<18} {measured:>10} "
                f"({r.baseline} {baseline})  expected {e.expected}"
            )
        if r.counters:
            shown = ", ".join(f"{k} {v}" for k, v in r.counters.items())
            lines.append(f"      counters (sum of {r.runs} run(s)): {shown}")
    return lines


def recorded(result: RecordResult) -> str:
    lines = [f"recorded for {result.name} as {short(result.commit)}:"]
    lines += [f"  {summary(r)}" for r in result.records]
    return "\n".join(lines)


def listing(entries: list[Entry]) -> str:
    rows = []
    for e in entries:
        if e.meta is None:
            rows.append(f"{e.name:<24} BROKEN   {e.problems[0][1] if e.problems else ''}")
            continue
        m = e.meta
        best = e.best()
        status = (
            "catalog" if m.kind == "catalog" else (m.verification.status if m.verification else "-")
        )
        line = f"{m.name:<24} v{m.version:<3} {m.kind:<7} {status:<10} {m.description[:60]}"
        if best is not None and best.improvement is not None:
            line += f"  [{best.workload} {best.improvement * 100:+.0f}%]"
        rows.append(line)
    return "\n".join(rows) if rows else "the repository has no policies yet"


def record_lines(records: list[PerformanceRecord]) -> list[str]:
    lines = []
    for r in records:
        emulated = " (emulated timings, TCG)" if r.is_emulated else ""
        lines.append(
            f"  {r.date:%Y-%m-%d} v{r.policy_version} {summary(r)} on {r.kernel}, "
            f"{r.machine.cpu_model} x{r.machine.cores}{emulated}"
        )
        if r.profile is not None:
            lines.append(f"      measured under {profile_text(r.profile)}")
    return lines


def profile_text(p: RecordProfile) -> str:
    """`profile of 2026-12-01 10:00 (command make -j8; 2 CPUs): cc1 batch 85%, …`."""
    t = p.target
    what = {
        "command": f"command {' '.join(t.command)[:60]}",
        "pids": f"pids {' '.join(map(str, t.pids[:8]))}",
        "cgroup": f"cgroup {t.cgroup}",
        "all": "every task",
    }[t.mode]
    groups = ", ".join(
        f"{g.name} {'/'.join(g.labels) or '-'} {g.cpu_share * 100:.0f}%" for g in p.shape.groups[:4]
    )
    more = f", and {len(p.shape.groups) - 4} more" if len(p.shape.groups) > 4 else ""
    return (
        f"the profile of {p.created:%Y-%m-%d %H:%M} ({what}; {p.shape.cpus} CPUs): "
        f"{groups or 'no groups'}{more}"
    )


def shown(entry: Entry, sha: str) -> str:
    lines = [f"{entry.name} at {short(sha)}"]
    m = entry.meta
    for path, problem in entry.problems:
        lines.append(f"  problem: {path}: {problem}")
    if m is None:
        return "\n".join(lines)
    lines += [
        f"  version {m.version} ({m.kind}), {verification_text(m)}",
        *run_lines(m),
        f"  {m.description}" if m.description else "  (no description)",
    ]
    if m.tags:
        lines.append(f"  tags: {', '.join(m.tags)}")
    if m.workloads:
        lines.append(f"  suits: {', '.join(m.workloads)}")
    if m.parent:
        lines.append(f"  parent: {m.parent}")
    if m.upstream:
        lines += [f"  run: {m.upstream.usage}", f"  {m.upstream.notes}"]
    if m.tunables:
        lines.append("  tunables:")
        for t in m.tunables:
            rng = _range(t.min, t.max)
            unit = f" {t.unit}" if t.unit else ""
            default = f" = {t.default}{unit}" if t.default is not None else ""
            desc = f"  {t.description}" if t.description else ""
            lines.append(f"    {t.name} ({t.type}){default}{rng}{desc}")
    if entry.records:
        lines.append("  performance:")
        lines += record_lines(sorted(entry.records, key=lambda r: r.date))
    report, _problem = verification_of(entry)
    if report is not None and report.behaviour:
        lines.append("  behaviour (schedc repo show --format json has each scenario's text):")
        lines += behaviour_lines(report.behaviour)
    return "\n".join(lines)


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in {low}..{high}"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def log(entries: list[LogEntry]) -> str:
    """One line a commit; a merge names the two commits it joined."""
    lines = []
    for e in entries:
        joined = f" (of {' and '.join(map(short, e.parents))})" if len(e.parents) > 1 else ""
        lines.append(f"{short(e.commit)} {e.date[:19]} {e.author:<16} {e.summary}{joined}")
    return "\n".join(lines)


def seeded(result: SeedResult) -> str:
    lines = [f"catalogue: {len(result.catalog)} scx schedulers ({', '.join(result.catalog)})"]
    for r in result.examples:
        lines.append(f"example: {added(r)}")
    if result.skipped:
        lines.append(f"examples not added: {result.skipped}")
    return "\n".join(lines)


def search(payload: dict[str, object]) -> str:
    results = payload["results"]
    assert isinstance(results, list)
    if not results:
        return "no policy matches"
    lines = []
    for r in results:
        why = r["why"]["fields"]
        matched = "; ".join(f"{k}: {', '.join(v)}" for k, v in why.items())
        match = f"{r['match']:4.0%}" if r.get("match") is not None else "   -"
        lines.append(f"{r['rank']:>3}. {match}  {r['name']:<24} {r['description'][:60]}")
        if matched:
            lines.append(f"           matched {matched}")
        behaviour = r.get("behaviour") or []
        if behaviour:
            lines.append(
                "           behaviour: "
                + "; ".join(
                    f"{b['scenario']} {'passing' if b['ok'] else 'FAILING'} on {b['kernel']}"
                    for b in behaviour
                )
            )
        alike = r.get("profile")
        if alike:
            emulated = ", emulated timings (TCG)" if alike["emulated"] else ""
            lines.append(
                f"           profile: similarity {alike['similarity']:.2f} "
                f"(record {alike['record']} on {alike['workload']}{emulated})"
            )
        best = r["best"]
        if best and best.get("improvement") is not None:
            base = best.get("baseline_scheduler") or "baseline"
            emulated = " (emulated timings, TCG)" if best.get("emulated") else ""
            lines.append(
                f"           best: {best['workload']} {best['metric']} "
                f"{best['improvement'] * 100:+.1f}% vs {base}{emulated}"
            )
    skipped = payload.get("skipped") or []
    if skipped:
        names = ", ".join(s["name"] for s in skipped)  # type: ignore[index]
        lines.append(f"(skipped broken entries: {names}; see schedc repo fsck)")
    return "\n".join(lines)


def synced(result: SyncResult) -> str:
    if result.conflicts:
        lines = [
            f"pull from {result.remote}/{result.branch} stopped: conflicting edits, nothing "
            "was merged"
        ]
        for c in result.conflicts:
            if c.kind == "file":  # a file outside policies/: what each side did to it
                ours, theirs = str(c.ours.get("change")), str(c.theirs.get("change"))
            else:
                ours = f"v{c.ours.get('version')}" if c.ours.get("exists") else "deleted"
                theirs = f"v{c.theirs.get('version')}" if c.theirs.get("exists") else "deleted"
            lines.append(f"  {c.name}: here {ours}, {result.remote} {theirs}")
        return "\n".join(lines)
    changed = f" ({len(result.changed)} policies changed)" if result.changed else ""
    return f"{result.action}: {result.remote}/{result.branch} at {short(result.head)}{changed}"
