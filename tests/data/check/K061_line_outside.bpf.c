/*
 * K061: #line naming a host file: clang would copy its lines into the BTF line info.
 * expect: K061@7
 */
#include "check_test.h"

#line 1 "/etc/passwd"
char _license[] SEC("license") = "GPL";
