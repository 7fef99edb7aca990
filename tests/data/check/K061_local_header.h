/* A header next to the policy (K061_local_header_ok.bpf.c includes it). */
#define LOCAL_SLICE 5000000ULL
