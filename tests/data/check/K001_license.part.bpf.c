/* A piece of a scheduler that K001_license_in_included_source_ok.bpf.c includes, the way
 * scx_chaos includes all of scx_p2dq's main.bpf.c: the license and a callback are here. */
char _license[] SEC("license") = "GPL";

s32 SEC("struct_ops/part_enqueue") part_enqueue(unsigned long long *ctx)
{
	scx_bpf_dispatch((struct task_struct *)ctx[0], SCX_DSQ_GLOBAL, SCX_SLICE_DFL, ctx[1]);
	return 0;
}
