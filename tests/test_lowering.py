"""The template sees the lowered view only: the Features decided once in lower.py and the
values lower.py prints, never the typed policy."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import jinja2
import pytest
from jinja2 import meta

from schedc.compiler.lower import TEMPLATE, Features, template_context
from schedc.compiler.pipeline import Source, translate
from schedc.dsl.ir import TypedPolicy

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "schedc" / "codegen_templates"


def _policy(body: str) -> TypedPolicy:
    result = translate(Source(Path("t.sched"), f'scheduler t "test" {{\n{body}\n}}\n'))
    assert result.ok and result.policy is not None, result.diagnostics
    return result.policy


def _features(body: str) -> Features:
    features = template_context(_policy(body), "t.sched")["features"]
    assert isinstance(features, Features)
    return features


def test_the_template_reads_exactly_the_context_lower_gives_it():
    source = (TEMPLATES / TEMPLATE).read_text()
    wanted = meta.find_undeclared_variables(jinja2.Environment().parse(source))
    context = template_context(_policy("class all otherwise\nqueue q for all fifo"), "t.sched")
    assert wanted == set(context)
    assert not any(isinstance(v, TypedPolicy) for v in context.values())
    # the policy's own values: plain data only, read-only, and its statements' plain values
    view = context["policy"]
    assert isinstance(view, Mapping)
    assert {"name", "tags", "select", "dispatch_kind", "weights", "watchdog_ms"} <= set(view)
    assert not {"classes", "queues", "params", "aging", "types"} & set(view)
    assert all(
        isinstance(v, (str, int, type(None), tuple, MappingProxyType)) for v in view.values()
    )
    assert dict(view["latency"]) == {
        "kick_idle": True, "wakeup_preempt": True, "slice_scaling": False
    }  # the defaults, as no latency statement changes them
    with pytest.raises(TypeError):
        view["latency"]["kick_idle"] = False  # type: ignore[index]
    with pytest.raises(TypeError):
        view["name"] = "other"  # type: ignore[index]
    assert "uses" not in wanted and "p" not in wanted


def test_one_fifo_class_needs_no_task_storage():
    f = _features("class all otherwise\nqueue q for all fifo")
    assert not (f.tctx or f.vtime or f.simple_vtime or f.stopping or f.comms or f.cpusets)
    assert f.running and f.clock and f.ordered_start == ()


def test_one_vtime_class_is_simple_vtime_and_more_classes_need_task_storage():
    simple = _features("class all otherwise\nqueue q for all vtime")
    assert simple.vtime and simple.simple_vtime and simple.stopping and not simple.tctx
    two = _features(
        'class web when task.comm == "nginx"\nclass rest otherwise\n'
        "queue w for web vtime\nqueue r for rest fifo\ndispatch w then r"
    )
    assert [c.buf for c in two.comms] == ["comm"] and two.vtime and not two.simple_vtime and two.tctx


def test_ordered_queues_start_in_order_and_the_flags_are_frozen():
    f = _features(
        "class long when task.avg_runtime > 10ms\nclass short otherwise\n"
        "queue l for long ordered by task.avg_runtime descending\nqueue s for short fifo\n"
        "dispatch l then s"
    )
    assert f.ordered_start == (0,) and f.avg_runtime and f.stopping and f.tctx
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.tctx = False  # type: ignore[misc]


EXAMPLE_FILES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.sched"))


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[e.stem for e in EXAMPLE_FILES])
def test_generated_code_sets_slice_and_vtime_through_the_setters(example: Path) -> None:
    """7.x logs every direct write to p->scx.slice / dsq_vtime as deprecated: the generated C
    writes them only inside the runtime header's setters (which use the kfuncs where the
    kernel has them), never in the policy's own callbacks."""
    result = translate(Source(example, example.read_text()))
    c_text = result.artifact.c_text
    assert c_text, result.diagnostics
    writes = re.findall(r"p->scx\.(?:slice|dsq_vtime)\s*(?:[+\-*/]?=)(?!=)", c_text)
    assert writes == [], writes
