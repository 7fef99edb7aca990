"""`schedc mcp`: the operations as Model Context Protocol tools, on the official SDK's server.

Each tool's parameters are its operation's pydantic model, so the schema a client sees and the
validation the server does are the same thing. Every result is a structured object (also sent
as JSON text for clients that read only text); a failure that is not the policy's own is a
result with `is_error` set and `{"ok": false, "error": {...}}`, never a dead server.
Resources: the DSL reference and the example policies. Prompt: `write_policy`, the same
workflow and reference that `schedc synthesize` gives its model.

A tool call's arguments go to the runner as the client sent them (`SchedcServer.call_tool`):
the runner's own checks (sizes, unknown fields, the schema) answer every bad argument with a
structured error that names the field, where the SDK's validation answered with text or, for
unknown fields, dropped them without a word. A call whose client cancels it or goes away stops
its worker (schedc.agent.runner).
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resources import FunctionResource
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations

from schedc import __version__
from schedc.agent.operations import OPERATIONS, Operation
from schedc.agent.reference import (
    EXAMPLE_URI,
    REFERENCE_URI,
    dsl_reference,
    example_source,
    examples,
)
from schedc.agent.runner import Runner
from schedc.agent.synthesize import MAX_WORKLOAD_BYTES, SYSTEM, first_message

MAX_HTTP_BODY = 1024 * 1024
MAX_GOAL_CHARS = 2000

INSTRUCTIONS = (
    "schedc compiles sched_ext CPU scheduling policies for Linux. To write a policy: "
    "search_policies for one that fits the workload (get_policy shows its source), read "
    "dsl_reference (or the resource " + REFERENCE_URI + ") once, write the policy in the DSL, "
    "then call submit_policy: it compiles, checks, runs the kernel verifier and stores the "
    "policy in one call, and returns diagnostics with line, column and a hint when something "
    "is wrong. compile_policy and check_policy are quicker for drafts; verify_policy proves a "
    "policy without storing it."
)


def _result(payload: dict[str, Any]) -> CallToolResult:
    failed = payload.get("ok") is False and "error" in payload
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload, indent=1, default=str))],
        structured_content=payload,
        is_error=failed,
    )


async def run_tool(
    runner: Runner, name: str, arguments: Any, ctx: Context | None
) -> CallToolResult:
    """One tool call through the runner, in a thread, with progress notifications; cancelled
    (the client said so, or went away), it stops the worker at once."""
    count = 0
    loop = anyio.lowlevel.current_token()  # progress comes from the runner's reader thread

    def progress(message: str) -> None:
        nonlocal count
        count += 1
        if ctx is None:
            return
        try:
            anyio.from_thread.run(ctx.report_progress, count, None, message, token=loop)
        except BaseException:  # noqa: BLE001 (a client that went away must not stop the work)
            pass

    cancel = threading.Event()
    call = functools.partial(runner.call, name, arguments, progress, cancel)
    try:
        # abandon_on_cancel: a cancelled call returns at once; the thread sees `cancel`, kills
        # the worker's process group and ends within POLL_SECONDS.
        payload = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    except BaseException:
        cancel.set()
        raise
    return _result(payload)


def _tool(op: Operation, runner: Runner) -> Any:
    """An async function whose signature is the operation's argument model, field by field
    (the schema that clients see); calls reach it through SchedcServer.call_tool."""

    async def tool(ctx: Context, **arguments: Any) -> CallToolResult:
        return await run_tool(runner, op.name, arguments, ctx)

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    annotations: dict[str, Any] = {"ctx": Context}
    for name, info in op.args.model_fields.items():
        annotation = Annotated[info.annotation, info]  # type: ignore[name-defined]
        default = inspect.Parameter.empty if info.is_required() else info.get_default()
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
            )
        )
        annotations[name] = annotation
    returns = Annotated[CallToolResult, dict[str, Any]]
    tool.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = {**annotations, "return": returns}
    tool.__name__ = op.name
    tool.__doc__ = op.description
    return tool


class SchedcServer(MCPServer):
    """The SDK's server, with schedc's operations called on the arguments as sent."""

    def __init__(self, runner: Runner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner

    async def call_tool(  # type: ignore[override]
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> Any:
        if name not in OPERATIONS:
            return await super().call_tool(name, arguments, context)
        return await run_tool(self.runner, name, arguments, context)


def build_server(runner: Runner) -> MCPServer:
    server = SchedcServer(
        runner, name="schedc", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
    )
    for op in OPERATIONS.values():
        server.add_tool(
            _tool(op, runner),
            name=op.name,
            description=op.description,
            annotations=ToolAnnotations(
                read_only_hint=op.read_only,
                destructive_hint=False,
                idempotent_hint=op.read_only,
                open_world_hint=False,
            ),
        )

    @server.resource(
        REFERENCE_URI,
        name="dsl-reference",
        description="the schedc policy language in brief, with a template and a checklist",
        mime_type="text/markdown",
    )
    def reference() -> str:
        return dsl_reference()

    for example in examples():
        server.add_resource(_example_resource(example.name, example.description))

    @server.prompt(
        name="write_policy",
        title="Write a sched_ext policy",
        description="the workflow and the DSL reference that `schedc synthesize` gives its "
        "model, with your goal: an MCP client's model writes, fixes and submits the policy",
    )
    def write_policy(goal: str, workload: str = "") -> str:
        for what, value, most in (("goal", goal, MAX_GOAL_CHARS), ("workload", workload, None)):
            limit = most or MAX_WORKLOAD_BYTES
            if len(value.encode("utf-8")) > limit:
                raise MCPError(INVALID_PARAMS, f"the {what} is longer than {limit} bytes")
        if not goal.strip():
            raise MCPError(INVALID_PARAMS, "the goal is empty: say what the scheduler should do")
        return SYSTEM + dsl_reference() + "\n\n" + first_message(goal, workload or None)

    return server


def _example_resource(name: str, description: str) -> FunctionResource:
    return FunctionResource(
        uri=EXAMPLE_URI.format(name=name),
        name=name,
        description=description or f"example policy {name}",
        mime_type="text/plain",
        fn=lambda: example_source(name) or "",
    )


def serve(runner: Runner, http_port: int | None = None) -> None:
    server = build_server(runner)
    if http_port is None:
        server.run("stdio")
    else:
        server.run(
            "streamable-http",
            host="127.0.0.1",
            port=http_port,
            max_request_body_size=MAX_HTTP_BODY,
        )
