/*
 * K062: an #include whose name comes from a macro, #embed, and #include_next.
 * expect: K062@8 K062@9 K062@10
 */
#include "check_test.h"

#define SECRET "check_test.h"
#include SECRET
#embed "K061_local_header.h"
#include_next <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";
