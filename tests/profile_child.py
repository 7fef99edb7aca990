"""Children for tests/test_profile.py and benchmarks/profile_overhead.py: real processes with
names of their own (prctl PR_SET_NAME) and a known shape.

    python profile_child.py spin COMM          a CPU-bound thread
    python profile_child.py nap COMM           wakes ~100/s, runs ~0.2 ms each time
    python profile_child.py multi COMM THREAD [N]  leader COMM asleep, N (2) threads THREAD
                                                   that nap
    python profile_child.py parent COMM CHILD  naps as COMM; after 0.3 s starts `spin CHILD`
    python profile_child.py stubborn COMM      ignores SIGTERM, sleeps
    python profile_child.py exit COMM SECONDS  naps, then exits 3
    python profile_child.py nice COMM N        nice +N, then sleeps
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_NAME = 15
_libc = ctypes.CDLL(None, use_errno=True)


def set_name(name: str) -> None:
    _libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)


def spin() -> None:
    while True:
        pass


def nap(run_s: float = 0.0002, sleep_s: float = 0.01) -> None:
    while True:
        start = time.perf_counter()
        while time.perf_counter() - start < run_s:
            pass
        time.sleep(sleep_s)


def main() -> None:
    mode, comm = sys.argv[1], sys.argv[2]
    if mode == "stubborn":  # before the name, which tells that it is ready
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    set_name(comm)
    if mode == "spin":
        spin()
    elif mode == "nap":
        nap()
    elif mode == "multi":

        def worker() -> None:
            set_name(sys.argv[3])
            nap()

        for _ in range(int(sys.argv[4]) if len(sys.argv) > 4 else 2):
            threading.Thread(target=worker, daemon=True).start()
        while True:
            time.sleep(1)
    elif mode == "parent":
        time.sleep(0.3)
        subprocess.Popen([sys.executable, __file__, "spin", sys.argv[3]])
        while True:
            time.sleep(1)
    elif mode == "stubborn":
        while True:
            time.sleep(1)
    elif mode == "exit":
        deadline = time.monotonic() + float(sys.argv[3])
        while time.monotonic() < deadline:
            time.sleep(0.01)
        sys.exit(3)
    elif mode == "nice":
        os.nice(int(sys.argv[3]))
        while True:
            time.sleep(1)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
