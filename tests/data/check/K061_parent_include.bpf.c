/*
 * K061: '..' climbs out of the include folders.
 * expect: K061@7
 */
#include "check_test.h"
/* the include folders are tests/data/check/include, the runtime's and vmlinux.h's */
#include "../../../../../../../../etc/hostname"

char _license[] SEC("license") = "GPL";
