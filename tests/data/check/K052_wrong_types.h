/* A header with a wrong declaration: scx_bpf_nr_cpu_ids() takes no argument. */
extern u32 scx_bpf_nr_cpu_ids(u32 which) __attribute__((section(".ksyms")));
