"""Moving the facilitator to a fresh deployment after its chain was reset (``gridledger migrate``).

A node that lost its history (a devnet restarted without its state, a test network wiped) no
longer holds the deployment the record and the index name. The service then refuses to start
(and a running one answers 503) rather than deploy over the record. This module is the one
deliberate way forward: it

1. checks that the recorded deployment really is gone (its code, or its first block);
2. copies the facilitator's database aside, sets the old record aside and deploys anew;
3. accounts for every order the facilitator ever accepted or indexed: an order still relayable
   (same EIP-712 domain, which on a reset devnet happens when the new contracts land at the old
   addresses, and its gate still open) is queued for relay again; every other one is marked
   ``abandoned`` with the reason, which its owner sees at ``GET /orders/{hash}``;
4. empties the index, which the new deployment's events fill again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from gridledger.chain.compile import compile_contracts
from gridledger.chain.connection import Chain, Roles, connect
from gridledger.chain.deploy import Deployment, deploy, is_live, record_path, set_aside
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import Transactor
from gridledger.config import Settings
from gridledger.encoding import to_hex
from gridledger.errors import ConfigurationError, DeploymentError
from gridledger.store.database import INDEXED_TABLES, get_meta, open_database, set_meta, write_transaction


@dataclass(frozen=True)
class MigrationReport:
    chain_id: int
    why: str
    old_market: str
    new_market: str
    new_record: Path
    old_record: Path
    database: str
    database_copy: Path | None
    requeued: int  # accepted orders queued for relay to the new deployment (same EIP-712 domain)
    abandoned_waiting: int  # accepted, never relayed, and not relayable to the new deployment
    abandoned_relayed: int  # relayed to the old chain, whose history is gone
    abandoned_indexed: int  # recorded on the old chain by others (not accepted here)
    cancellations_abandoned: int
    slots_lost: int  # slots the old chain had cleared or settled

    @property
    def accounted(self) -> int:
        return self.requeued + self.abandoned_waiting + self.abandoned_relayed + self.abandoned_indexed


def reset_reason(chain: Chain, old: Deployment, database: str) -> str | None:
    """Why the recorded deployment is gone, or None if the chain still holds it."""
    head = int(chain.w3.eth.block_number)
    market = old.addresses["EnergyMarket"]
    if old.block > head or not is_live(chain, old):
        return f"the chain has no code at market {market} (head block {head})"
    if Path(database).exists():
        known = get_meta(open_database(database), "deployment_block_hash")
        now = to_hex(chain.w3.eth.get_block(old.block)["hash"])
        if known is not None and known != now:
            return f"block {old.block}, where market {market} was deployed, is now {now}, not {known}"
    return None


def migrate(settings: Settings) -> MigrationReport:
    if settings.chain == "embedded":
        raise ConfigurationError("the embedded chain starts empty with every process: there is nothing to migrate")
    chain = connect(settings)
    old = Deployment.load(chain.chain_id)
    if old is None:
        raise DeploymentError(
            f"{record_path(chain.chain_id)} does not exist: nothing to migrate; `gridledger deploy` deploys"
        )
    why = reset_reason(chain, old, settings.database)
    if why is None:
        raise DeploymentError(
            f"the recorded deployment (market {old.addresses['EnergyMarket']}) is live on chain {chain.chain_id} "
            "with the history the index holds: nothing to migrate"
        )
    db = open_database(settings.database)
    indexed_market = get_meta(db, "market")
    if indexed_market is not None and indexed_market != old.addresses["EnergyMarket"]:
        raise ConfigurationError(
            f"database {settings.database} indexes market {indexed_market}, not the recorded "
            f"{old.addresses['EnergyMarket']}: set GRIDLEDGER_DATABASE to the facilitator's file"
        )
    copy = _copy_aside(settings.database)

    build = compile_contracts()
    roles = Roles.from_settings(settings)
    transactor = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))
    old_record = set_aside(chain.chain_id, old)
    new = deploy(chain, transactor, roles, build, settings)
    new_record = new.save()

    old_market, new_market = old.addresses["EnergyMarket"], new.addresses["EnergyMarket"]
    same_domain = old_market == new_market  # the EIP-712 domain: chain id and market address
    now = chain.now()
    gate_s = settings.gate_closure_seconds
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    gone = f"market {old_market} on chain {chain.chain_id} lost its history (node reset; migrated {stamp})"
    counts = dict.fromkeys(("requeued", "waiting", "relayed", "indexed", "cancellations", "slots"), 0)
    with write_transaction(db):
        counts["slots"] = db.execute("select count(*) from slots").fetchone()[0]
        # Orders the old chain recorded that were not accepted here: kept, so their owners see what happened.
        indexed = db.execute_returning_dicts(
            "select * from orders where order_hash not in (select order_hash from submissions)"
        )
        for o in indexed:
            db.execute(
                "insert into submissions (order_hash, prosumer, nonce, side, delivery_start, energy_wh, "
                "price_per_kwh, expiry, r, vs, status, reason, error, tx_hash, accepted_at, relayed_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, '', '', 'abandoned', ?, 'ChainReset', '', ?, null)",
                [
                    o["order_hash"],
                    o["prosumer"],
                    o["nonce"],
                    o["side"],
                    o["delivery_start"],
                    o["energy_wh"],
                    o["price_per_kwh"],
                    o["expiry"],
                    f"recorded in block {o['block']} as {o['status']}, but {gone}; it is not on market {new_market}",
                    time.time(),
                ],
            )
        counts["indexed"] = len(indexed)
        for s in db.execute_returning_dicts("select * from submissions where status in ('accepted', 'relayed')"):
            gate = s["delivery_start"] - gate_s
            was = "was waiting for relay"
            if s["status"] == "relayed":
                was = "was relayed to it" + (f" in {s['tx_hash']}" if s["tx_hash"] else "")
            if same_domain and now < gate and now <= s["expiry"]:
                db.execute(
                    "update submissions set status = 'accepted', tx_hash = '', relayed_at = null, reason = ? "
                    "where order_hash = ?",
                    [f"{gone}; it {was}; queued again for the new deployment at the same address", s["order_hash"]],
                )
                counts["requeued"] += 1
                continue
            if not same_domain:
                cannot = (
                    f"its EIP-712 signature names market {old_market}, so it is not valid on the new market "
                    f"{new_market}: sign it again for the new market"
                )
            elif now >= gate:
                cannot = "its slot's gate closed before the new deployment"
            else:
                cannot = "it expired before the new deployment"
            db.execute(
                "update submissions set status = 'abandoned', error = 'ChainReset', reason = ? where order_hash = ?",
                [f"{gone}; it {was}; {cannot}", s["order_hash"]],
            )
            counts["relayed" if s["status"] == "relayed" else "waiting"] += 1
        counts["cancellations"] = db.execute(
            "update cancellations set status = 'abandoned', reason = ? where status = 'pending'",
            [f"{gone}; the cancellation was not sent"],
        ).rowcount
        for table in INDEXED_TABLES:
            db.execute(f"delete from {table}")
        db.execute("delete from meta where key like 'last_block%' or key = 'deployment_block_hash'")
        set_meta(db, "market", new_market)
        set_meta(db, "chain_id", str(chain.chain_id))
    return MigrationReport(
        chain_id=chain.chain_id,
        why=why,
        old_market=old_market,
        new_market=new_market,
        new_record=new_record,
        old_record=old_record,
        database=settings.database,
        database_copy=copy,
        requeued=counts["requeued"],
        abandoned_waiting=counts["waiting"],
        abandoned_relayed=counts["relayed"],
        abandoned_indexed=counts["indexed"],
        cancellations_abandoned=counts["cancellations"],
        slots_lost=counts["slots"],
    )


def _copy_aside(database: str) -> Path | None:
    path = Path(database)
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.before-migrate-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    source = sqlite3.connect(path)
    try:
        with sqlite3.connect(target) as dest:
            source.backup(dest)
    finally:
        source.close()
    return target
