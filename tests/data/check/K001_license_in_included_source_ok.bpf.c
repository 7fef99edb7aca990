/*
 * K001 negative: the license is in a .bpf.c this file includes, so the object has one; the
 * callback defined there serves as ops.enqueue.
 * expect: clean
 */
#include "check_test.h"
#include "K001_license.part.bpf.c"

TEST_OPS(t_ops, .enqueue = (void *)part_enqueue, .name = "t");
