"""schedc.paths.within, the one "is this path inside one of these folders" of schedc: the
edge cases, the difference `resolve` makes, and that no module keeps a copy."""

from __future__ import annotations

import re

import pytest

from schedc.paths import within
from tests.conftest import ROOT


@pytest.mark.parametrize("resolve", [False, True])
def test_a_root_contains_itself_and_what_is_below_it(tmp_path, resolve):
    root = tmp_path / "a" / "b"
    (root / "c").mkdir(parents=True)
    assert within(root, [root], resolve=resolve)  # the root itself
    assert within(root / "c" / "d.h", [root], resolve=resolve)  # below it, existing or not
    assert within(f"{root}/", [root], resolve=resolve)  # a trailing slash on the path
    assert within(root / "c", [f"{root}/"], resolve=resolve)  # ... or on the root
    assert within(root / "c", [f"{root}//"], resolve=resolve)
    assert within(root, [tmp_path / "elsewhere", root], resolve=resolve)  # any of the roots
    assert within(root, ["/"], resolve=resolve)  # everything is below /


@pytest.mark.parametrize("resolve", [False, True])
def test_a_common_prefix_is_not_containment(tmp_path, resolve):
    root = tmp_path / "a" / "b"
    sibling = tmp_path / "a" / "bc"
    for folder in (root, sibling):
        folder.mkdir(parents=True)
    assert not within(sibling, [root], resolve=resolve)  # /a/bc is not in /a/b
    assert not within(sibling / "x.h", [root], resolve=resolve)
    assert not within(tmp_path / "a", [root], resolve=resolve)  # nor is its parent
    assert not within(root / ".." / "bc" / "x.h", [root], resolve=resolve)  # `..` is folded
    assert not within(root, [], resolve=resolve)


def test_a_relative_path_is_taken_from_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "inc").mkdir()
    monkeypatch.chdir(tmp_path)
    assert within("inc/x.h", [tmp_path / "inc"], resolve=False)
    assert within("inc/x.h", ["inc"], resolve=True)
    assert not within("x.h", [tmp_path / "inc"], resolve=False)


def test_resolve_follows_symbolic_links_and_the_names_alone_do_not(tmp_path):
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.h").write_text("")
    (allowed / "link.h").symlink_to(outside / "secret.h")  # a name inside, a file outside
    assert within(allowed / "link.h", [allowed], resolve=False)  # as a sandbox binds names
    assert not within(allowed / "link.h", [allowed], resolve=True)  # where it really is
    via = tmp_path / "via"
    via.symlink_to(allowed)  # a root named through a link: the same folder once resolved
    assert within(allowed / "x.h", [via], resolve=True)
    assert not within(allowed / "x.h", [via], resolve=False)


def test_no_module_keeps_its_own_copy_of_the_comparison():
    """The containment test, a prefix compared with a separator added, is written once."""
    copy = re.compile(r"startswith\([^\n]*\+\s*(os\.sep|\"/\"|'/')")
    found = [
        f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}"
        for path in sorted((ROOT / "schedc").rglob("*.py"))
        if path.name != "paths.py"
        for text in [path.read_text(encoding="utf-8")]
        for m in copy.finditer(text)
    ]
    # repo/gitstore.py's `_within` is of another kind: repository-relative git paths (always
    # "/"), where "." is the whole tree, never resolved against the file system.
    assert len(found) == 1 and found[0].startswith("schedc/repo/gitstore.py:"), found
