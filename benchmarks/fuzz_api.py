"""Fuzzing the facilitator's API at length: schemathesis from the live /openapi.json, signed.

    python benchmarks/fuzz_api.py [--cases 2500] [--seed 0]

Starts the API over a fresh embedded chain in process (FastAPI's TestClient), registers and
funds two prosumers, posts a flexibility request and an order for the fuzzed paths to find, then
sends about ``--cases`` generated requests spread over every operation, half positive (values the
document allows, orders and offers re-signed by a prosumer, privileged requests signed by the
role) and half negative (values it does not allow). The generator and its signing are
tests/backend/api/fuzzing.py, which the CI test (test_fuzz.py) runs with a few cases. Prints the
case count, the server errors, the answers that violate the documented schema (status, content
type, body) and the time; exits 1 if there was any failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "backend" / "api"), str(ROOT)]  # fuzzing.py and the tests' helpers

from fuzzing import fuzz, prepare  # noqa: E402

from gridledger.api.app import create_app  # noqa: E402
from gridledger.api.client import GridLedgerClient  # noqa: E402
from gridledger.chain.compile import compile_contracts  # noqa: E402
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, Roles, connect, derive_account  # noqa: E402
from gridledger.chain.deploy import ensure_deployed  # noqa: E402
from gridledger.chain.ledger import Ledger  # noqa: E402
from gridledger.chain.reverts import RevertDecoder  # noqa: E402
from gridledger.chain.transactions import Transactor  # noqa: E402
from gridledger.config import Settings  # noqa: E402
from gridledger.network.model import NetworkModel  # noqa: E402
from gridledger.service.facilitator import Facilitator  # noqa: E402
from gridledger.service.relayer import RelayPolicy  # noqa: E402

DEPOSIT = 100_000_000


class Running:
    """What ``fuzzing.prepare`` needs of the tests' ``Api``: the service, its client, its ledger."""

    def __init__(self, service: Facilitator, client: GridLedgerClient, ledger: Ledger) -> None:
        self.service, self.client, self.ledger = service, client, ledger

    def chain(self, fn):  # type: ignore[no-untyped-def]
        return self.service.on_chain(fn)

    def next_slot(self) -> int:
        return (int(self.chain(self.ledger.chain.now)) // 900 + 4) * 900


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2_500, help="about this many requests in all")
    args = parser.parse_args()

    settings = Settings(chain="embedded")
    build = compile_contracts()
    chain = connect(settings)
    roles = Roles.from_settings(settings)
    transactor = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))
    deployment, _ = ensure_deployed(chain, transactor, roles, build, settings, record=False)
    ledger = Ledger(chain, build, deployment, roles, transactor)
    model = NetworkModel.load(settings.network_model)
    with tempfile.TemporaryDirectory() as workdir:
        service_settings = Settings(chain="embedded", database=f"{workdir}/facilitator.sqlite")
        service = Facilitator(
            ledger, service_settings, model=model, policy=RelayPolicy(batch_size=100, max_wait_s=0.05)
        )
        with TestClient(create_app(service), raise_server_exceptions=False) as http:
            api = Running(service, GridLedgerClient(http=http), ledger)
            prosumers = [derive_account(settings.mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(2)]
            for i, account in enumerate(prosumers):
                body = {"account": account.address, "meter_id": 100 + i, "bus": 3 + i, "capacity_w": 20_000}
                api.client.request("POST", "/participants", body=body, signer=roles.facilitator)

                def fund(account=account) -> None:  # type: ignore[no-untyped-def]
                    ledger.fund_gas(account.address, 10**18)
                    ledger.mint(account.address, DEPOSIT)
                    ledger.deposit(account, DEPOSIT)
                    service.ctx.indexer.sync()

                api.chain(fund)
            signer = prepare(api, prosumers)
            operations = len(http.get("/openapi.json").json()["paths"])
            methods = sum(len(ops) for ops in http.get("/openapi.json").json()["paths"].values())
            per_operation = max(1, args.cases // (2 * methods))
            print(f"fuzzing {methods} operations on {operations} paths, {per_operation} cases each per mode…")
            report = fuzz(http, signer, cases_per_operation=per_operation)
    print(report.summary())
    for failure in report.failures[:20]:
        print(failure)
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
