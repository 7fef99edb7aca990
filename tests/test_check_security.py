"""The security rules read the raw text before the preprocessor runs, and a policy that names
a host file is never handed to libclang. Cases that need real files on disk (symlinks) are
built here in tmp_path; the fixed cases are in tests/data/check/K06*."""

from __future__ import annotations

from pathlib import Path

from schedc.verifier.check_security import blank_comments, blank_literals, scan_text
from schedc.verifier.checks import check_c
from tests.conftest import ROOT

INCLUDE = ROOT / "tests" / "data" / "check" / "include"
POLICY_TAIL = """
char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/t_enqueue") t_enqueue(unsigned long long *ctx)
{
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}

TEST_OPS(t_ops, .enqueue = (void *)t_enqueue, .name = "t");
"""


def codes(text: str) -> list[tuple[str, int | None]]:
    return [(d.code, d.line) for d in scan_text(text, "policy.bpf.c")]


def test_a_symlink_out_of_the_policy_folder_is_caught_after_parsing(toolchain, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.h").write_text("#define SECRET 42\n")
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    (policy_dir / "settings.h").symlink_to(outside / "secret.h")
    policy = policy_dir / "p.bpf.c"
    policy.write_text('#include "check_test.h"\n#include "settings.h"\n' + POLICY_TAIL)
    diags = check_c(policy, toolchain, [INCLUDE])
    assert [(d.code, d.line) for d in diags] == [("K061", 2)]
    assert "secret.h" in diags[0].message


def test_a_header_beside_the_policy_is_fine(toolchain, tmp_path: Path):
    (tmp_path / "settings.h").write_text("#define SLICE 1000000ULL\n")
    policy = tmp_path / "p.bpf.c"
    policy.write_text('#include "check_test.h"\n#include "settings.h"\n' + POLICY_TAIL)
    assert check_c(policy, toolchain, [INCLUDE]) == []


def test_a_blocked_policy_is_not_parsed(toolchain, tmp_path: Path):
    """The named file does not exist: had libclang run, it would say 'file not found'."""
    policy = tmp_path / "p.bpf.c"
    policy.write_text(f'#include "check_test.h"\n#include "{tmp_path}/nothing/here.h"\n' + POLICY_TAIL)
    assert [d.code for d in check_c(policy, toolchain, [INCLUDE])] == ["K060"]


def test_comments_and_literals_hide_nothing_and_invent_nothing():
    text = (
        '/* #include "/etc/passwd" */\n'
        '// asm volatile("")\n'
        'const char *s = "asm(\\"x\\") #pragma clang section";\n'
        "#define A 1 /* a\n"
        "   multi-line comment */\n"
        "#inc\\\n"
        'lude "/etc/hosts"\n'
    )
    assert codes(text) == [("K060", 6)]


def test_line_splicing_happens_before_everything_else():
    """Translation phase 2 joins `\\`-newline first: a split keyword is still a keyword, and a
    // comment ending in `\\` swallows the next line."""
    text = 'void f(void) { a\\\nsm volatile(""); }\n_Pr\\\nagma("clang section")\n// c \\\n asm\n'
    assert codes(text) == [("K063", 1), ("K064", 3)]


def test_directives_with_spaces_and_the_pragma_operator():
    text = '  #  include   </etc/hosts>\n#pragma   push_macro("SEC")\n_Pragma ( "clang attribute push" )\n'
    assert codes(text) == [("K060", 1), ("K064", 2), ("K064", 3)]


def test_blanking_keeps_positions():
    text = 'a /* b */ "c\\"d" // e\nf'
    assert len(blank_comments(text)) == len(text)
    assert blank_literals(blank_comments(text)) == 'a         "    "     \nf'
