"""The contracts' invariant machine, run long: random sequences of every party's acts.

    python benchmarks/invariants.py [--examples 10000] [--steps 20] [--seed N]

Runs the state machine of ``tests/contracts/test_invariants.py`` (``invariant_machine.py``)
with ``--examples`` examples of up to ``--steps`` steps each, on one embedded chain reverted to
a snapshot before every example, then prints the examples and steps run, what the acts did,
how often each invariant was checked, the wall time, and the failure if there was one (with the
shrunk sequence of steps that reproduces it). Exit status 1 on a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# slither-analyzer installs a top-level ``tests`` package into site-packages; name ours
# explicitly, so the import never depends on sys.path order.
_tests = types.ModuleType("tests")
_tests.__path__ = [str(ROOT / "tests")]
sys.modules["tests"] = _tests

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402
from tests.contracts.invariant_machine import CHECKS, RUNS, GridLedgerMachine, world  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples to run (default 10000)")
    parser.add_argument("--steps", type=int, default=20, help="steps per example (default 20, as in CI)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default random)")
    parser.add_argument("--progress", type=int, default=100, help="report progress every N examples (stderr)")
    args = parser.parse_args()

    setup = time.perf_counter()
    world()
    setup = time.perf_counter() - setup
    config = settings(
        max_examples=args.examples,
        stateful_step_count=args.steps,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    started = time.perf_counter()

    class Machine(GridLedgerMachine):
        def __init__(self) -> None:
            super().__init__()
            if RUNS["examples"] % args.progress == 0:
                elapsed = time.perf_counter() - started
                print(f"… {RUNS['examples']:,} examples, {RUNS['steps']:,} steps, {elapsed:,.0f} s", file=sys.stderr)

    machine: type[GridLedgerMachine] = Machine
    if args.seed is not None:
        from hypothesis import seed

        machine = seed(args.seed)(Machine)
    failure = None
    try:
        run_state_machine_as_test(machine, settings=config)
    except BaseException as exc:
        failure = exc
    wall = time.perf_counter() - started

    examples = RUNS["examples"]
    steps = RUNS["steps"]
    print(f"examples run: {examples:,} (asked for {args.examples:,}, up to {args.steps} steps each)")
    print(f"steps run:    {steps:,} (each example's opening flexibility request counts as one)")
    print(f"wall time:    {wall:,.1f} s (+ {setup:.1f} s to deploy the world once)")
    if examples:
        print(f"rate:         {examples / wall:.2f} examples/s, {steps / wall:.1f} steps/s")
    print("acts:")
    for name, count in sorted(RUNS.items()):
        if name not in ("examples", "steps"):
            print(f"  {name:<48} {count:>10,}")
    print("checks per invariant:")
    for name, count in sorted(CHECKS.items()):
        print(f"  {name:<48} {count:>10,}")
    if failure is None:
        print("failures:     none")
        return 0
    print("FAILURE:")
    traceback.print_exception(failure)
    return 1


if __name__ == "__main__":
    sys.exit(main())
