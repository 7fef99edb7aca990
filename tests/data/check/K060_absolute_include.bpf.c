/*
 * K060: absolute paths in #include and __has_include read (or probe) files of the build host.
 * The policy is not parsed at all, so nothing else is reported.
 * expect: K060@7 K060@8
 */
#include "check_test.h"
#include "/etc/hostname"
#if __has_include("/etc/shadow")
#define HAVE_SHADOW 1
#endif

char _license[] SEC("license") = "GPL";
