"""Run the whole test suite several times in a row while other processes keep every core busy.

Timing-dependent tests pass on an idle machine and fail on a busy one (a CI host running other
jobs): this is how such tests are found. `make test-under-load` runs it; flags:

    python scripts/test_under_load.py --runs 5 --burners 2 [-- pytest arguments]

Each burner spins on one core at the suite's own priority, so the suite gets a fair share of
the machine and no more. The runs stop at the first failure; the burners are stopped on every
way out (and stop themselves after the longest the runs may take); each run has a time limit.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Sequence

RUN_LIMIT_S = 45 * 60


def burn(stop_at: float) -> None:
    """Keep one core busy until `stop_at` (bounded even if nobody stops this process)."""
    while time.monotonic() < stop_at:
        sum(i * i for i in range(10_000))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    parser.add_argument("pytest_args", nargs="*", help="after --, passed on to pytest")
    args = parser.parse_args(argv)

    limit = time.monotonic() + args.runs * RUN_LIMIT_S
    burners = [
        multiprocessing.Process(target=burn, args=(limit,), daemon=True)
        for _ in range(args.burners)
    ]
    for burner in burners:
        burner.start()
    print(f"{args.burners} burner processes keep the CPU busy", flush=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.pytest_args]
    durations: list[float] = []
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            try:
                status = subprocess.run(command, timeout=RUN_LIMIT_S, check=False).returncode
            except subprocess.TimeoutExpired:
                print(f"run {run}: exceeded {RUN_LIMIT_S} s", flush=True)
                return 1
            durations.append(time.monotonic() - started)
            print(f"run {run}/{args.runs}: exit {status} in {durations[-1]:.0f} s", flush=True)
            if status != 0:
                return status
    finally:
        for burner in burners:
            burner.terminate()
        for burner in burners:
            burner.join()
    print(f"{args.runs} runs passed under load: " + ", ".join(f"{d:.0f} s" for d in durations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
