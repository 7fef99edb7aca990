"""Running compiled schedulers through the kernel's BPF verifier."""
