"""A longer fault campaign: real anvil and `gridledger serve` processes, each killed with SIGKILL at
random moments while slots are traded, cleared and settled; then every accepted order, clearing,
settlement and network report is checked against the chain.

    .venv/bin/python scripts/fault_campaign.py --faults 20 --seconds 300

Each fault strikes at a random moment after the service recovered from the one before (serve and
node kills alternate); ``--seconds`` is how long slots are traded at least. Prints the figures as
JSON: faults injected (by kind and by what was under way: orders and relay, clearing, meter
readings and settlement), serve start-up times, retries, orders accepted, on the chain, refused
visibly (with the reason) and lost, duplicated, slots cleared and settled (and twice), and stored
network reports that do not match the chain. Exits 1 if anything was lost, duplicated, done
twice or mismatched; a clearing, reading or settlement refused for another reason than "already
done" stops the campaign with the error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.faults import run_campaign
from tests.integration.test_devnet import free_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--orders", type=int, default=12, help="orders per slot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridledger-faults-") as workdir:
        figures = run_campaign(
            Path(workdir),
            free_port(),
            free_port(),
            faults=args.faults,
            seconds=args.seconds,
            seed=args.seed,
            orders=args.orders,
        )
    print(json.dumps(figures, indent=2))
    bad = (
        "lost",
        "duplicated",
        "orders_refused_without_reason",
        "slots_cleared_twice",
        "slots_settled_twice",
        "reports_mismatched",
    )
    return 1 if any(figures[k] for k in bad) else 0


if __name__ == "__main__":
    sys.exit(main())
