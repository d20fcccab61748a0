"""The contracts' invariant machine, run long: random sequences of every party's acts.

    python benchmarks/invariants.py [--examples 10000] [--steps 20] [--round 250] [--minutes M] [--seed N]

Runs the state machine of ``tests/contracts/test_invariants.py`` (``invariant_machine.py``) on
one embedded chain reverted to a snapshot before every example, in rounds of ``--round``
examples of up to ``--steps`` steps each (each round a Hypothesis run with its own seed), until
``--examples`` examples have run, a round fails, or ``--minutes`` have passed. After every round
it prints the totals so far: examples and steps run, what the acts did, how often each
invariant was checked, the wall time; at the end the failure if there was one (with the shrunk
sequence of steps that reproduces it). Exit status 1 on a failure.
"""

from __future__ import annotations

import argparse
import random
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

from hypothesis import HealthCheck, Phase, seed, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402
from tests.contracts.invariant_machine import CHECKS, REFUSALS, RUNS, GridLedgerMachine, world  # noqa: E402


def totals(wall: float, setup: float, asked: int, steps_each: int) -> None:
    examples, steps = RUNS["examples"], RUNS["steps"]
    print(f"examples run: {examples:,} (asked for {asked:,}, up to {steps_each} steps each)")
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
    print("refusals by custom error:")
    for name, count in sorted(REFUSALS.items()):
        print(f"  {name:<48} {count:>10,}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="examples to run (default 10000)")
    parser.add_argument("--steps", type=int, default=20, help="steps per example (default 20, as in CI)")
    parser.add_argument("--round", type=int, default=250, help="examples per Hypothesis run (default 250)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after the round that passes this")
    parser.add_argument("--seed", type=int, default=None, help="seed of the rounds' seeds (default random)")
    args = parser.parse_args()
    if min(args.examples, args.steps, args.round) < 1 or (args.minutes is not None and args.minutes <= 0):
        parser.error("--examples, --steps, --round and --minutes must be positive")

    setup = time.perf_counter()
    world()
    setup = time.perf_counter() - setup
    seeds = random.Random(args.seed)
    started = time.perf_counter()
    failure: BaseException | None = None
    rounds = 0
    while RUNS["examples"] < args.examples and failure is None:
        if args.minutes is not None and time.perf_counter() - started > args.minutes * 60:
            print(f"stopped: {args.minutes:g} minutes passed")
            break
        config = settings(
            max_examples=min(args.round, args.examples - RUNS["examples"]),
            stateful_step_count=args.steps,
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        round_seed = seeds.getrandbits(64)
        try:
            run_state_machine_as_test(seed(round_seed)(GridLedgerMachine), settings=config)
        except BaseException as exc:  # a failed invariant, or an interrupt: report what ran
            failure = exc
            print(f"round {rounds + 1} (seed {round_seed}) stopped:")
        rounds += 1
        print(f"── after round {rounds} ──")
        totals(time.perf_counter() - started, setup, args.examples, args.steps)

    if failure is None:
        print("failures:     none")
        return 0
    print("FAILURE:")
    traceback.print_exception(failure)
    return 1


if __name__ == "__main__":
    sys.exit(main())
