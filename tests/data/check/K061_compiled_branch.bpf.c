/*
 * K061: an include that climbs out, in the branch the preprocessor takes (`#ifndef LSP`), is
 * refused as if no condition were around it; so is a probe on a conditional directive itself,
 * which clang evaluates even when the block after it is skipped.
 * expect: K061@9 K060@13
 */
#include "check_test.h"
#ifndef LSP
#include "../../../../../../../../etc/hostname"
#endif
#if 0
int unused_a;
#elif __has_include("/etc/hostname")
int unused_b;
#endif

char _license[] SEC("license") = "GPL";
