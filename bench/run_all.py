"""Run every benchmark in this folder with its recorded settings (``make bench``).

Each benchmark prints its own figures and the ratio against the reference it measures in the same run;
bench/README.md records them with the command that made them.  Pass ``--quick`` for a short smoke run
(smaller workloads, seconds instead of a minute) that checks the benchmarks still work.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, full-run arguments, quick-run arguments)
BENCHMARKS = [
    ("bench_fit.py", [], ["--subjects", "40", "--trials", "300", "--reference-fits", "4"]),
    ("bench_population.py", [], ["--subjects", "20", "--trials", "100", "--no-cpm", "--repeat", "1"]),
    ("bench_kernels.py", ["--lanes", "20", "--rounds", "21"], ["--subjects", "20", "--rounds", "3"]),
    ("bench_hier.py", [], ["--subjects", "20", "--trials", "100"]),
    ("bench_threads.py", [], ["--subjects", "20", "--trials", "100", "--rounds", "1"]),
    ("bench_load.py", ["--rounds", "9"], ["--subjects", "100", "--rounds", "2"]),
    ("bench_nwb_read.py", [], ["--repeat", "1"]),
    ("bench_photometry.py", [], ["--repeat", "1", "--duration", "600", "--rate", "200"]),
    ("bench_neural_fit.py", [], ["--repeat", "1", "--trials", "100", "--restarts", "3"]),
    ("bench_trace_fit.py", [], ["--trials", "100", "--restarts", "3"]),
    ("bench_rig_link.py", ["--emulator"], ["--pings", "200", "--seconds", "5"]),
    ("bench_firmware_link.py", [], ["--pings", "200", "--seconds", "3"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short smoke run of every benchmark")
    ap.add_argument("only", nargs="*", help="run only these scripts (e.g. bench_fit.py)")
    args = ap.parse_args()
    failed = []
    for script, full, quick in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
