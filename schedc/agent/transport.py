"""A scripted Messages API at the HTTP edge, for replaying a synthesis without the network.

`ScriptedTransport(turns)` is an `httpx2` transport for the real `anthropic` client: each POST
to /v1/messages is answered by the next turn, which is a recorded response body (a dict) or a
function of the request body (so a scripted turn can read the diagnostics the previous tool call
returned, as a model would). `schedc synthesize --transcript FILE` records the responses of a
real run; `--replay FILE` plays them back through this transport.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx2

Reply = dict[str, Any] | httpx2.Response  # a response body, or a whole response (an API error)
Turn = Reply | Callable[[dict[str, Any]], Reply]


def message(
    content: list[dict[str, Any]],
    *,
    stop_reason: str | None = None,
    input_tokens: int = 1000,
    output_tokens: int = 200,
    model: str = "scripted",
) -> dict[str, Any]:
    """A Messages API response body."""
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    return {
        "id": f"msg_{next(_ids):06d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def tool_use(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{next(_ids):06d}", "name": name, "input": arguments}


def text(words: str) -> dict[str, Any]:
    return {"type": "text", "text": words}


_ids = itertools.count(1)


def last_tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results the client just sent back, decoded: what a model would read next."""
    messages = request.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return []
    found = []
    for block in messages[-1].get("content") or []:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            content = block.get("content")
            if isinstance(content, list):
                content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
            try:
                found.append(json.loads(content or "null"))
            except json.JSONDecodeError:
                found.append({"text": content})
    return found


class ScriptedTransport(httpx2.BaseTransport):
    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns = list(turns)
        self.requests: list[dict[str, Any]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST" or not request.url.path.endswith("/v1/messages"):
            return httpx2.Response(404, json=_api_error("not_found_error", str(request.url)))
        body = json.loads(request.read())
        self.requests.append(body)
        index = len(self.requests) - 1
        if index >= len(self.turns):
            return api_error(
                400,
                "invalid_request_error",
                f"the script has {len(self.turns)} turns; the client asked for turn {index + 1}",
            )
        turn = self.turns[index]
        reply = turn(body) if callable(turn) else turn
        return reply if isinstance(reply, httpx2.Response) else httpx2.Response(200, json=reply)


def _api_error(kind: str, words: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": words}}


def api_error(status: int, kind: str, words: str) -> httpx2.Response:
    """An error response as the Messages API sends it, e.g. (401, "authentication_error")."""
    return httpx2.Response(status, json=_api_error(kind, words))


def scripted_client(transport: ScriptedTransport) -> Any:
    """The real `anthropic` client, talking to `transport` instead of the network."""
    import anthropic  # noqa: PLC0415

    return anthropic.Anthropic(
        api_key="scripted", http_client=httpx2.Client(transport=transport), max_retries=0
    )


def load_recording(path: Path) -> list[Turn]:
    """The model responses of a `--transcript` file, in order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    responses = data.get("responses") if isinstance(data, dict) else None
    if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
        raise ValueError(f"{path}: not a schedc synthesize transcript (no 'responses' list)")
    return list(responses)
