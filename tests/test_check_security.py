"""The security rules read the policy's tokens (libclang's lexer) before the parser runs, and a
policy that names a host file is never parsed. Cases that need real files on disk (symlinks)
are built here in tmp_path; the fixed cases are in tests/data/check/K06*; every interface and
the sandbox itself are tested with hostile C in tests/test_hostile_c.py."""

from __future__ import annotations

from pathlib import Path

from schedc.verifier.checks import check_c
from schedc.verifier.rules.security import scan_text
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


def test_a_header_beside_a_policy_reached_through_a_linked_folder_is_fine(
    toolchain, tmp_path: Path
):
    """The policy's folder is named through a symlinked parent (CI reaches the kits through
    ../shared): its own header is beside it, not outside the allowed folders."""
    real = tmp_path / "real" / "policy"
    real.mkdir(parents=True)
    (real / "settings.h").write_text("#define SLICE 1000000ULL\n")
    (real / "p.bpf.c").write_text('#include "check_test.h"\n#include "settings.h"\n' + POLICY_TAIL)
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    assert check_c(tmp_path / "linked" / "policy" / "p.bpf.c", toolchain, [INCLUDE]) == []


def test_a_symlink_out_of_a_linked_policy_folder_is_still_caught(toolchain, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.h").write_text("#define SECRET 42\n")
    real = tmp_path / "real" / "policy"
    real.mkdir(parents=True)
    (real / "settings.h").symlink_to(outside / "secret.h")
    (real / "p.bpf.c").write_text('#include "check_test.h"\n#include "settings.h"\n' + POLICY_TAIL)
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    diags = check_c(tmp_path / "linked" / "policy" / "p.bpf.c", toolchain, [INCLUDE])
    assert [(d.code, d.line) for d in diags] == [("K061", 2)]
    assert "secret.h" in diags[0].message


def test_a_blocked_policy_is_not_parsed(toolchain, tmp_path: Path):
    """The named file does not exist: had libclang run, it would say 'file not found'."""
    policy = tmp_path / "p.bpf.c"
    policy.write_text(
        f'#include "check_test.h"\n#include "{tmp_path}/nothing/here.h"\n' + POLICY_TAIL
    )
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


def test_spellings_the_lexer_knows():
    """Digraphs, splices with trailing blanks or CRLF, and lone CR line ends are what clang
    reads as directives; a text pattern missed each of them."""
    text = (
        '%:include "/abs/a.h"\n'
        "%:embed <data.bin>\n"
        '#inc\\ \nlude "/abs/b.h"\n'
        '#inc\\\r\nlude "/abs/c.h"\r\n'
        'int a;\r#include "/abs/d.h"\r'
        "#if __has_embed(</abs/e>)\n#endif\n"
    )
    assert codes(text) == [
        ("K060", 1),
        ("K062", 2),
        ("K060", 3),
        ("K060", 5),
        ("K060", 8),
        ("K060", 9),
    ]


def test_macros_that_build_pragmas_and_assembly():
    text = (
        "#define P(x) _Pragma(#x)\n"
        'P(GCC dependency "x.h")\n'
        "#define A(x) __as##x\n"
        "#define B(x) x%:%:m__\n"
        "#define C(a, b) a##b\n"
    )
    assert codes(text) == [("K064", 1), ("K063", 3), ("K063", 4)]


def test_line_names_are_judged_without_looking_at_the_disk(tmp_path: Path):
    policy = tmp_path / "p.bpf.c"
    text = '#line 3 "/no/such/file.c"\n#line 4 "p.bpf.c"\n# 5 "../x.c"\n'
    assert [(d.code, d.line) for d in scan_text(text, str(policy), cwd=str(tmp_path))] == [
        ("K061", 1),
        ("K061", 3),
    ]


def test_one_huge_expression_is_refused_before_parsing():
    text = "int f(void) { return " + "+".join(["1"] * 3000) + "; }\n"
    assert codes(text) == [("K044", 1)]


def test_assembly_from_a_headers_macro_is_the_headers_but_a_pasted_one_is_the_policys(
    toolchain, tmp_path: Path
):
    """scx's MEMBER_VPTR expands to inline assembly from scx/common.bpf.h: not the policy's
    (the kernel's scx_qmap uses it). A macro of the policy's own that pastes `__as` and `m`
    from its parameters builds assembly its text never spells: K063 after parsing."""
    (tmp_path / "vptr.h").write_text(
        "#define VPTR(x) ({ int r_; asm volatile(\"%0 = 1\" : \"=r\"(r_) : \"r\"(x)); r_; })\n"
    )
    body = (
        "static __attribute__((unused)) int f(int x)\n{\n"
        "\tint v = VPTR(x);\n{built}\treturn v;\n}}\n"
    )
    policy = tmp_path / "p.bpf.c"
    policy.write_text('#include "check_test.h"\n#include "vptr.h"\n'
                      + body.replace("{built}", "").replace("}}", "}") + POLICY_TAIL)
    assert [d.code for d in check_c(policy, toolchain, [INCLUDE]) if d.code == "K063"] == []
    policy.write_text('#include "check_test.h"\n#include "vptr.h"\n#define J(a, b) a##b\n'
                      + body.replace("{built}", '\tJ(__as, m) volatile ("" ::: "memory");\n')
                      .replace("}}", "}") + POLICY_TAIL)
    assert [(d.code, d.line) for d in check_c(policy, toolchain, [INCLUDE])
            if d.code == "K063"] == [("K063", 7)]


def test_a_pasting_macro_that_cannot_spell_assembly_keeps_the_headers_assembly(
    toolchain, tmp_path: Path
):
    """scx_sdt's DEFINE_SDT_STAT pastes `stat_inc_##metric` around scx's cast_kern(), whose
    assembly is the header's: no `##` chain starting with `stat_inc_` can spell `asm`. A chain
    of parameters (`a##b`) or of pieces of the word (`__as##x`) still can."""
    (tmp_path / "arena.h").write_text('#define CAST(x) asm volatile("" : "+r"(x))\n')
    policy = tmp_path / "p.bpf.c"
    stat = (
        "#define STAT(metric) \\\n"
        "static __attribute__((unused)) void stat_inc_##metric(int x) { CAST(x); } \\\n"
        "int stat_##metric;\n"
        "STAT(enqueue);\n"
    )
    policy.write_text('#include "check_test.h"\n#include "arena.h"\n' + stat + POLICY_TAIL)
    assert [d.code for d in check_c(policy, toolchain, [INCLUDE])] == []
    built = stat.replace("stat_inc_##metric", "J(stat_inc_, metric)").replace(
        "#define STAT", "#define J(a, b) a##b\n#define STAT"
    )
    policy.write_text('#include "check_test.h"\n#include "arena.h"\n' + built + POLICY_TAIL)
    assert [(d.code, d.line) for d in check_c(policy, toolchain, [INCLUDE])] == [("K063", 7)]


def test_compile_scan_judges_only_the_branch_clang_compiles(toolchain, tmp_path: Path):
    """What `schedc compile` checks before clang: scx's `#ifdef LSP` include of a relative
    path does not stop the build (the verifier gets the object); the same include in the branch
    the preprocessor takes does."""
    from schedc.verifier.checks import scan_c  # noqa: PLC0415

    folder = tmp_path / "scheds" / "rust" / "x" / "src" / "bpf"
    folder.mkdir(parents=True)
    policy = folder / "main.bpf.c"
    text = (
        "#ifdef LSP\n"
        '#include "../../../../include/scx/common.bpf.h"\n'
        "#else\n"
        '#include "check_test.h"\n'
        "#endif\n" + POLICY_TAIL
    )
    assert scan_c(policy, toolchain, text, [INCLUDE]) == []
    taken = text.replace("#ifdef LSP", "#ifndef LSP")
    assert [(d.code, d.line) for d in scan_c(policy, toolchain, taken, [INCLUDE])] == [
        ("K061", 2)
    ]
