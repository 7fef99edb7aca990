"""`schedc synthesize GOAL`: an Anthropic model with the schedc tools writes a policy.

The model gets the DSL reference in its (cached) system prompt and the same operations as the
MCP server (schedc.agent.operations, through a Runner): it searches the repository, drafts a
policy, reads the diagnostics, fixes it and submits it, and submit_policy compiles, checks and
verifies before it commits. The loop stops as soon as a policy is submitted, when the model
stops asking for tools, or after --max-iterations model calls. Every tool call is printed as it
happens; the end report gives iterations, tool round-trips, tokens and an estimated cost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from schedc.agent.operations import OPERATIONS
from schedc.agent.reference import dsl_reference
from schedc.agent.runner import Runner
from schedc.settings import synthesis_price

if TYPE_CHECKING:
    from schedc.profile.model import Profile

DEFAULT_MODEL = "claude-sonnet-4-6"
MAX_TOKENS = 8192
MAX_WORKLOAD_BYTES = 32 * 1024
MAX_TOOL_RESULT_CHARS = 60_000
MAX_PROFILE_GROUPS = 12  # groups of a --profile shown to the model (the largest by CPU share)
PROFILE_SCENARIO_NAME = "profile"
# USD per million tokens (input, output); cache writes cost 1.25x input, reads 0.1x.
PRICES: dict[str, tuple[float, float]] = {
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
}

SYSTEM = """You write Linux sched_ext CPU schedulers with schedc. Prefer the schedc policy \
language (DSL) described below; write BPF C (language "c") only when the DSL cannot express the \
goal.

How to work, in as few tool calls as possible:
1. search_policies once for a policy that fits the goal; get_policy if one looks close.
2. Write the policy. Start from the template in section 7 and follow its checklist.
3. Call submit_policy with the full source, a name, a one-line description, tags, and \
parent set to the repository policy you started from (if any). It compiles, checks, runs the \
kernel verifier and stores the policy in one call.
4. If it is rejected, read each diagnostic (line, column, code, hint), fix the source and \
submit again. Do not call compile_policy or verify_policy first unless you are unsure.
Answer with one short paragraph once the policy is submitted.

"""


@dataclass
class ToolCall:
    iteration: int
    name: str
    ok: bool
    summary: str
    seconds: float


@dataclass
class Report:
    goal: str
    model: str
    iterations: int = 0  # model calls
    round_trips: int = 0  # model calls that asked for tools
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None
    outcome: str = "running"  # submitted | model_finished | max_iterations | api_error
    submitted: dict[str, Any] | None = None
    final_text: str = ""
    error: str | None = None
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        ver = (self.submitted or {}).get("verification") or {}
        return ver.get("status") == "verified"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verified"] = self.verified
        return data


def price(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens: SCHEDC_PRICE="IN,OUT", else the table."""
    given = synthesis_price()
    if given:
        try:
            low, high = (float(x) for x in given.split(","))
            return low, high
        except ValueError:
            return None
    for known, prices in PRICES.items():
        if model == known or model.startswith(known + "-"):
            return prices
    return None


def tool_specs() -> list[dict[str, Any]]:
    specs = [
        {
            "name": op.name,
            "description": op.description,
            "input_schema": op.args.model_json_schema(),
        }
        for op in OPERATIONS.values()
        if op.name != "dsl_reference"  # it is in the system prompt already
    ]
    specs[-1]["cache_control"] = {"type": "ephemeral"}
    return specs


def first_message(goal: str, workload: str | None, profiled: ProfileContext | None = None) -> str:
    text = f"Goal: {goal}\n"
    if workload:
        text += f"\nThe workload, as described by its owner:\n<workload>\n{workload}\n</workload>\n"
    if profiled is not None:
        text += (
            "\nThe workload as `schedc profile` measured it on the user's machine (task groups "
            "with CPU share, runtime per run, wake-ups and run-queue delay in microseconds, and "
            f"a classification with its evidence):\n<profile>\n{profiled.brief}\n</profile>\n"
            "\nA sandbox scenario of the same shape (the same comms, counts scaled to the "
            "sandbox's CPUs, and expectations derived from the profile):\n"
            f"<scenario>\n{profiled.scenario}\n</scenario>\n"
            "A first DSL draft generated from the profile (a starting point: it compiles, "
            "but nothing in it is tuned; edit it for the goal):\n"
            f"<draft>\n{profiled.draft}\n</draft>\n"
            "Classify by these groups' comms and shapes. Test a draft with test_policy and "
            "this scenario before you submit; submit_policy tests it on this scenario too "
            "and stores the report with the policy.\n"
        )
    return text + "\nWrite a policy for this goal and submit it."


@dataclass(frozen=True)
class ProfileContext:
    """What the model is told about a measured workload, and the scenario its drafts are
    tested against."""

    brief: str  # the profile as JSON, its largest groups only
    scenario: str  # TOML text of a scenario of the profile's shape
    draft: str  # a first DSL policy whose classes are the profile's groups

    @classmethod
    def of(cls, profile: Profile) -> ProfileContext:
        from schedc.profile.draft import draft_policy  # noqa: PLC0415
        from schedc.profile.scenario import scenario_from_profile  # noqa: PLC0415

        shown = profile.model_copy(update={"groups": profile.groups[:MAX_PROFILE_GROUPS]})
        brief = shown.model_dump_json(indent=1, exclude={"overhead"})
        return cls(brief, scenario_from_profile(profile), draft_policy(profile))


def _summary(name: str, payload: dict[str, Any]) -> str:
    if payload.get("ok") is False and "error" in payload:
        err = payload["error"]
        return f"{err['kind']}: {err['message']}"
    if name == "search_policies":
        names = ", ".join(r["name"] for r in payload.get("results", [])[:5])
        return f"{payload.get('total', 0)} found" + (f": {names}" if names else "")
    if name == "submit_policy":
        ver = (payload.get("verification") or {}).get("status", "unverified")
        if payload.get("status") in ("added", "unchanged"):
            return f"{payload['status']} {payload.get('name')} v{payload.get('version')} ({ver})"
        return f"rejected: {payload.get('summary', '')}"
    return str(payload.get("summary") or ("ok" if payload.get("ok") else "failed"))


def _assistant_content(blocks: list[Any]) -> list[dict[str, Any]]:
    out = []
    for b in blocks:
        if b.type == "text":
            out.append({"type": "text", "text": b.text})
        elif b.type == "tool_use":
            out.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
    return out


def synthesize(
    client: Any,
    runner: Runner,
    goal: str,
    *,
    model: str = DEFAULT_MODEL,
    workload: str | None = None,
    max_iterations: int = 12,
    say: Callable[[str], None] = lambda _m: None,
    recording: list[dict[str, Any]] | None = None,
    profile: Profile | None = None,
) -> Report:
    """The loop. `client` is an `anthropic.Anthropic`; its transport decides where turns come
    from. Raises nothing for API trouble: the report says where it stopped and why."""
    import anthropic  # noqa: PLC0415

    report = Report(goal=goal, model=model)
    started = time.monotonic()
    system = [
        {
            "type": "text",
            "text": SYSTEM + dsl_reference(),
            "cache_control": {"type": "ephemeral"},
        }
    ]
    tools = tool_specs()
    profiled = ProfileContext.of(profile) if profile is not None else None
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": first_message(goal, workload, profiled)}
    ]
    try:
        while report.iterations < max_iterations:
            report.iterations += 1
            response = client.messages.create(
                model=model, max_tokens=MAX_TOKENS, system=system, tools=tools, messages=messages
            )
            if recording is not None:
                recording.append(response.model_dump(mode="json", exclude_none=True))
            _count(report, response.usage)
            content = _assistant_content(response.content)
            messages.append({"role": "assistant", "content": content})
            words = " ".join(b["text"] for b in content if b["type"] == "text").strip()
            if words:
                report.final_text = words
            uses = [b for b in content if b["type"] == "tool_use"]
            if not uses:
                report.outcome = "model_finished"
                say(f"[{report.iterations}] the model finished without submitting")
                break
            report.round_trips += 1
            results = [_run_tool(runner, report, model, use, say, profiled) for use in uses]
            messages.append({"role": "user", "content": results})
            if report.submitted is not None:
                report.outcome = "submitted"
                break
        else:
            report.outcome = "max_iterations"
    except anthropic.APIStatusError as exc:
        report.outcome, report.error = "api_error", f"HTTP {exc.status_code}: {exc.message}"
    except anthropic.APIConnectionError as exc:
        report.outcome, report.error = "api_error", f"cannot reach the API: {exc}"
    report.seconds = round(time.monotonic() - started, 2)
    prices = price(model)
    if prices is not None:
        p_in, p_out = prices
        report.cost_usd = round(
            (
                report.input_tokens * p_in
                + report.cache_write_tokens * p_in * 1.25
                + report.cache_read_tokens * p_in * 0.1
                + report.output_tokens * p_out
            )
            / 1e6,
            4,
        )
    return report


def _count(report: Report, usage: Any) -> None:
    report.input_tokens += usage.input_tokens or 0
    report.output_tokens += usage.output_tokens or 0
    report.cache_write_tokens += getattr(usage, "cache_creation_input_tokens", None) or 0
    report.cache_read_tokens += getattr(usage, "cache_read_input_tokens", None) or 0


def _run_tool(
    runner: Runner,
    report: Report,
    model: str,
    use: dict[str, Any],
    say: Callable[[str], None],
    profiled: ProfileContext | None = None,
) -> dict[str, Any]:
    name, arguments = use["name"], use["input"]
    if name == "submit_policy" and isinstance(arguments, dict):
        arguments = {"agent": f"schedc-synthesize/{model}", **arguments}
        if profiled is not None and arguments.get("scenario") is None:
            # A policy for a measured workload is stored with its behaviour on that shape.
            arguments["scenario"] = profiled.scenario
            arguments["scenario_name"] = PROFILE_SCENARIO_NAME
    say(f"[{report.iterations}] {name}")
    t0 = time.monotonic()
    payload = runner.call(name, arguments, progress=lambda m: say(f"      {m}"))
    seconds = round(time.monotonic() - t0, 2)
    ok = payload.get("ok") is not False
    summary = _summary(name, payload)
    report.tool_calls.append(ToolCall(report.iterations, name, ok, summary, seconds))
    say(f"      {'ok' if ok else 'failed'}: {summary} ({seconds:g} s)")
    if name == "submit_policy" and payload.get("status") in ("added", "unchanged"):
        report.submitted = payload
    body = json.dumps(payload, default=str)
    if len(body) > MAX_TOOL_RESULT_CHARS:
        body = body[:MAX_TOOL_RESULT_CHARS] + "... (truncated)"
    return {
        "type": "tool_result",
        "tool_use_id": use["id"],
        "content": body,
        "is_error": not ok,
    }


# -- the command -------------------------------------------------------------------------------
def render(report: Report) -> str:
    lines = [f"goal: {report.goal}", f"model: {report.model}"]
    for call in report.tool_calls:
        mark = "ok  " if call.ok else "FAIL"
        lines.append(f"  [{call.iteration}] {mark} {call.name}: {call.summary}")
    sub = report.submitted
    if sub:
        ver = (sub.get("verification") or {}).get("status", "unverified")
        lines.append(
            f"result: {sub.get('name')} v{sub.get('version')} {sub.get('status')} "
            f"({ver}), commit {str(sub.get('commit'))[:12]}"
        )
    else:
        lines.append(f"result: nothing submitted ({report.outcome})")
    if report.error:
        lines.append(f"error: {report.error}")
    cost = (
        f"${report.cost_usd:.4f}" if report.cost_usd is not None else "unknown (set SCHEDC_PRICE)"
    )
    lines.append(
        f"{report.iterations} model calls, {report.round_trips} tool round-trips, "
        f"{len(report.tool_calls)} tool calls, {report.input_tokens} input + "
        f"{report.output_tokens} output tokens (cache: {report.cache_write_tokens} written, "
        f"{report.cache_read_tokens} read), cost {cost}, {report.seconds:g} s"
    )
    return "\n".join(lines)
