"""The ledger indexer: follows the contracts' events into SQLite and resumes where it stopped.

Each sync reads the logs of a block range once (the market's contracts in one ``eth_getLogs``),
applies them in chain order and records the last block processed, in one SQLite transaction:
a crash leaves the index at a block boundary, and the next sync starts from the block after.
Market balances are not recomputed from events (that would copy the contract's rules); the
accounts an event touched are read from the contract at the range's last block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import sqlite_utils
from eth_abi.abi import decode as abi_decode
from eth_typing import ABIEvent
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from web3.types import LogReceipt

from gridledger.chain.ledger import Ledger
from gridledger.chain.slots import order_args, unpack_outcomes, unpack_readings
from gridledger.chain.transactions import read
from gridledger.encoding import to_hex
from gridledger.errors import ChainReset, ConfigurationError
from gridledger.market.orders import Order
from gridledger.store.database import INDEXED_TABLES, get_meta, set_meta, write_transaction

log = logging.getLogger(__name__)

MAX_BLOCKS_PER_SYNC = 2_000
RECENT_STATES = 4  # blocks behind the head whose state any node still answers for (anvil keeps 8)
ZERO_ADDRESS = "0x" + "00" * 20
Handler = Callable[[dict[str, Any], LogReceipt], None]
Decoded = tuple[str, Handler, dict[str, Any], LogReceipt]  # event name, its handler, arguments, log
BUY, SELL = 0, 1


def _path_of(db: sqlite_utils.Database) -> str:
    return str(db.execute("pragma database_list").fetchone()[2] or "(in memory)")


def decode_event(abi: ABIEvent, entry: LogReceipt) -> dict[str, Any]:
    """A log's arguments, decoded with eth-abi (web3's event decoder costs about 1 ms a log).
    Indexed arguments of GridLedger's events are all value types, so each topic holds its value."""
    inputs = abi["inputs"]
    indexed = [i for i in inputs if i.get("indexed")]
    plain = [i for i in inputs if not i.get("indexed")]
    args: dict[str, Any] = {}
    for item, topic in zip(indexed, entry["topics"][1:], strict=True):
        (args[item["name"]],) = abi_decode([item["type"]], bytes(topic))
    values = abi_decode([i["type"] for i in plain], bytes(entry["data"]))
    args.update((item["name"], value) for item, value in zip(plain, values, strict=True))
    for item in inputs:
        if item["type"] == "address":
            args[item["name"]] = to_checksum_address(args[item["name"]])
    return args


class Indexer:
    """Keeps the index tables of ``db`` in step with ``ledger``'s deployment."""

    def __init__(self, ledger: Ledger, db: sqlite_utils.Database) -> None:
        self.ledger = ledger
        self.db = db
        self.w3 = ledger.chain.w3
        self.addresses = [ledger.registry.address, ledger.market.address, ledger.token.address, ledger.flex.address]
        self._events: dict[bytes, tuple[ABIEvent, Handler]] = {}
        for contract in (ledger.registry, ledger.market, ledger.token, ledger.flex):
            for abi in contract.abi:
                if abi.get("type") != "event":
                    continue
                event = cast(ABIEvent, abi)
                handler = getattr(self, f"_on_{event['name']}", None)
                if handler is not None:
                    self._events[bytes(event_abi_to_log_topic(event))] = (event, handler)
        self._check_deployment()
        self.check_chain()

    @property
    def last_block(self) -> int:
        value = get_meta(self.db, "last_block")
        return int(value) if value is not None else self.ledger.deployment.block - 1

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def sync(self, *, to_block: int | None = None) -> int:
        """Processes every block up to ``to_block`` (default: the head); returns blocks processed."""
        target = self.head() if to_block is None else to_block
        processed = 0
        while self.last_block < target:
            start = self.last_block + 1
            end = min(target, start + MAX_BLOCKS_PER_SYNC - 1)
            logs = self.w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": self.addresses})
            block = self.w3.eth.get_block(end)
            ordered = sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"]))
            events = [event for event in map(self._decode, ordered) if event is not None]
            # Chain reads first, so that the write lock is held for SQLite work only.
            at = self._state_block(end, target)
            balances = self._balances(events, at)
            with write_transaction(self.db):
                for _, handler, args, entry in events:
                    handler(args, entry)
                for account, changed in balances.items():
                    self.db.execute(
                        "insert into accounts (account, available, locked, token_balance, block) "
                        "values (?, 0, 0, 0, ?) on conflict (account) do nothing",
                        [account, at],
                    )
                    assignments = ", ".join(f"{column} = ?" for column in changed)
                    self.db.execute(
                        f"update accounts set {assignments}, block = ? where account = ?",
                        [*changed.values(), at, account],
                    )
                set_meta(self.db, "last_block", end)
                set_meta(self.db, "last_block_hash", to_hex(block["hash"]))
                set_meta(self.db, "last_block_timestamp", block["timestamp"])
            processed += end - start + 1
        return processed

    def _state_block(self, end: int, target: int) -> int:
        """The block to read a chunk's balances at: its end while the node surely still holds that
        state (within ``RECENT_STATES`` of the sync's target, a head just read), else the head. A
        node keeps few old states (anvil here 8, a full geth node 128), and an index far behind (a
        new database, a rewind) would be refused them. Read at the head, a balance is newer than
        the chunk's events: its ``block`` says so, and every later event that touches the account
        reads it again. The head is asked only for such a chunk, not on every sync."""
        return end if target - end < RECENT_STATES else self.head()

    # ─────────────── bookkeeping ───────────────

    def _check_deployment(self) -> None:
        """Refuses a database that indexes another deployment or a chain history that is gone."""
        market = self.ledger.market.address
        known = get_meta(self.db, "market")
        chain_id = str(self.ledger.chain.chain_id)
        if known is None:
            with write_transaction(self.db):
                set_meta(self.db, "market", market)
                set_meta(self.db, "chain_id", chain_id)
            return
        if known != market or get_meta(self.db, "chain_id") != chain_id:
            raise ConfigurationError(
                f"database {_path_of(self.db)} indexes market {known} on chain {get_meta(self.db, 'chain_id')}, "
                f"not market {market} on chain {chain_id}: set GRIDLEDGER_DATABASE to another file"
            )

    def check_chain(self) -> bool:
        """Checks that the chain still holds the deployment and the blocks indexed so far.

        Raises ``ChainReset`` if the deployment's code is gone or its first block is no longer
        the block it was deployed in (a reset node, perhaps with another deployment at the same
        addresses). If only recent blocks are gone (a node restarted from an older state: the
        deployment is intact), the index is rebuilt from the deployment's block and accepted
        orders whose relay was lost go back to the relay queue; returns True then.
        """
        deployment = self.ledger.deployment
        head = self.head()
        market = self.ledger.market.address
        advice = (
            "Accepted orders are kept. Run `gridledger migrate` to deploy anew on this chain "
            "(the old record is set aside and every accepted order is accounted for), or restart the node "
            "with its state"
        )
        if deployment.block > head or len(self.w3.eth.get_code(market)) == 0:
            raise ChainReset(
                f"the chain node was reset: market {market} has no code at block {head} "
                f"(deployed in block {deployment.block}). {advice}"
            )
        first = to_hex(self.w3.eth.get_block(deployment.block)["hash"])
        known_first = get_meta(self.db, "deployment_block_hash")
        if known_first is None:
            with write_transaction(self.db):
                set_meta(self.db, "deployment_block_hash", first)
        elif known_first != first:
            raise ChainReset(
                f"the chain was reset or reorganised: block {deployment.block}, where market {market} was "
                f"deployed, is now {first}, not {known_first} (another deployment at the same addresses?). {advice}"
            )
        last_hash = get_meta(self.db, "last_block_hash")
        if last_hash is None:
            return False
        last = self.last_block
        if last <= head and to_hex(self.w3.eth.get_block(last)["hash"]) == last_hash:
            return False
        log.warning(
            "the chain no longer has block %d as indexed (%s; head %d): the node lost recent blocks; "
            "re-indexing from block %d",
            last,
            last_hash,
            head,
            deployment.block,
        )
        self.rewind()
        return True

    def rewind(self) -> None:
        """Rebuilds the index from the deployment's block; relayed orders the chain lost are queued again."""
        self.reset()
        self.sync()
        with write_transaction(self.db):
            lost = self.db.execute(
                "update submissions set status = 'accepted', tx_hash = '', relayed_at = null "
                "where status = 'relayed' and order_hash not in (select order_hash from orders)"
            ).rowcount
        if lost:
            log.warning("%d relayed orders are no longer on the chain: queued for relay again", lost)

    def reset(self) -> None:
        """Empties the index tables (the facilitator's own tables are kept)."""
        with write_transaction(self.db):
            for table in INDEXED_TABLES:
                self.db.execute(f"delete from {table}")
            self.db.execute("delete from meta where key like 'last_block%'")

    def _decode(self, entry: LogReceipt) -> Decoded | None:
        topics = entry["topics"]
        found = self._events.get(bytes(topics[0])) if topics else None
        if found is None:
            return None
        abi, handler = found
        return abi["name"], handler, decode_event(abi, entry), entry

    def _touches(self, event: str, a: dict[str, Any], recorded: dict[int, list[str]]) -> list[str]:
        """The accounts whose market balance an event changes (``recorded``: the prosumers of the
        orders this range records, by slot, for a settlement in the same range)."""
        if event in ("Deposited", "Withdrawn", "ImbalanceUncollected"):
            return [a["account"]]
        if event == "OrderRecorded":  # a buy locks its escrow; a sale moves no money until settlement
            order = order_args(a)
            return [order["prosumer"]] if order["side"] == BUY else []
        if event == "OrderCancelled":
            return [a["prosumer"]]
        if event == "FillsSettled":  # buyers' escrow, sellers' revenue, the DSO's network charges
            ds = a["deliveryStart"]
            rows = self.db.execute("select distinct prosumer from orders where delivery_start = ?", [ds]).fetchall()
            return [r[0] for r in rows] + recorded.get(ds, []) + [self.ledger.roles.dso.address]
        if event == "SlotSettled":
            return [self.ledger.roles.balancing.address]
        return []

    def _tokens_touched(self, event: str, a: dict[str, Any]) -> list[str]:
        """The accounts whose token balance an event changes."""
        if event != "Transfer":
            return []
        return [x for x in (a["from"], a["to"]) if x not in (ZERO_ADDRESS, self.ledger.market.address)]

    def _balances(self, events: list[Decoded], block: int) -> dict[str, dict[str, int]]:
        """Balances at ``block`` of the accounts the events touched: market accounts in one call."""
        recorded: dict[int, list[str]] = {}
        for name, _, args, _ in events:
            if name == "OrderRecorded":
                recorded.setdefault(args["deliveryStart"], []).append(order_args(args)["prosumer"])
        market = sorted({x for name, _, args, _ in events for x in self._touches(name, args, recorded)})
        tokens = sorted({x for name, _, args, _ in events for x in self._tokens_touched(name, args)})
        balances: dict[str, dict[str, int]] = {a: {} for a in market + tokens}
        if market:
            (rows,) = read(self.ledger.market.functions.accountsOf(market), ("(uint128,uint128)[]",), block)
            for account, (available, locked) in zip(market, rows, strict=True):
                balances[account] |= {"available": int(available), "locked": int(locked)}
        for account in tokens:
            (amount,) = read(self.ledger.token.functions.balanceOf(account), ("uint256",), block)
            balances[account]["token_balance"] = int(amount)
        return balances

    def _payment(
        self,
        entry: LogReceipt,
        account: str,
        kind: str,
        amount: int,
        ds: int | None,
        order_hash: str | None,
        *,
        item: int = 0,
        slot: int | None = None,
    ) -> None:
        # A log can hold several payments (a settlement chunk: several per order): the key is
        # the log's index · 2^20 + the order's place in the log · 8 + the kind's place.
        key = entry["logIndex"] * 2**20 + item * 8 + (_KIND_SLOT[kind] if slot is None else slot)
        self.db.execute(
            "insert or replace into payments (block, log_index, account, delivery_start, kind, amount, order_hash) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            [entry["blockNumber"], key, account, ds, kind, amount, order_hash],
        )

    # ─────────────── event handlers (named after the events) ───────────────

    def _on_ParticipantRegistered(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute(
            "insert or replace into participants (account, meter_id, bus, capacity_w, participant_index, block, "
            "log_index) values (?, ?, ?, ?, ?, ?, ?)",
            [a["account"], a["meterId"], a["bus"], a["capacityW"], a["index"], entry["blockNumber"], entry["logIndex"]],
        )

    def _on_Transfer(self, a: dict[str, Any], entry: LogReceipt) -> None:
        """Token movements only change balances, which ``_touches`` refreshes."""

    def _on_Deposited(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self._payment(entry, a["account"], "deposit", a["amount"], None, None)

    def _on_Withdrawn(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self._payment(entry, a["account"], "withdrawal", -a["amount"], None, None)

    def _on_OrderRecorded(self, a: dict[str, Any], entry: LogReceipt) -> None:
        order = Order.from_event(order_args(a))
        row = {
            "order_hash": to_hex(self.ledger.hash_of(order)),
            **order.as_row(),
            "status": "open",
            "filled_wh": 0,
            "block": entry["blockNumber"],
            "log_index": entry["logIndex"],
        }
        self.db.execute(
            f"insert or replace into orders ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values())
        )

    def _on_OrderCancelled(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute("update orders set status = 'cancelled' where order_hash = ?", [to_hex(a["orderHash"])])

    def _on_ClearingStarted(self, a: dict[str, Any], entry: LogReceipt) -> None:
        """A clearing (re)starts: the fills of an unfinished earlier attempt no longer count."""
        ds = a["deliveryStart"]
        self.db.execute("delete from fills where delivery_start = ?", [ds])
        self.db.execute(
            "update orders set status = 'open', filled_wh = 0 where delivery_start = ? and status = 'filled'", [ds]
        )

    def _on_OrderFilled(self, a: dict[str, Any], entry: LogReceipt) -> None:
        """A committed fill; money moves when the slot settles."""
        order_hash = to_hex(a["orderHash"])
        row = self.db.execute("select prosumer, side from orders where order_hash = ?", [order_hash]).fetchone()
        if row is None:
            log.warning("fill of order %s, which the index does not have", order_hash)
            return
        self.db.execute(
            "update orders set status = 'filled', filled_wh = ? where order_hash = ?", [a["filledWh"], order_hash]
        )
        self.db.execute(
            "insert or replace into fills (order_hash, prosumer, delivery_start, side, filled_wh, amount, "
            "network_charge, block) values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                order_hash,
                row[0],
                a["deliveryStart"],
                int(row[1]),
                a["filledWh"],
                a["cost"],
                a["networkCharge"],
                entry["blockNumber"],
            ],
        )

    def _on_SlotCleared(self, a: dict[str, Any], entry: LogReceipt) -> None:
        ds = a["deliveryStart"]
        self.db.execute("update orders set status = 'unfilled' where delivery_start = ? and status = 'open'", [ds])
        self.db.execute(
            "insert or replace into slots (delivery_start, status, clearing_price_per_kwh, network_tariff_per_kwh, "
            "traded_wh, fills_hash, network_report_hash, network_model_version, cleared_block) "
            "values (?, 'cleared', ?, ?, ?, ?, ?, ?, ?)",
            [
                ds,
                a["clearingPricePerKWh"],
                a["networkTariffPerKWh"],
                a["tradedWh"],
                to_hex(a["fillsHash"]),
                to_hex(a["networkReportHash"]),
                to_hex(a["networkModelVersion"]),
                entry["blockNumber"],
            ],
        )

    def _on_MeterReadingsPosted(self, a: dict[str, Any], entry: LogReceipt) -> None:
        accounts = dict(self.db.execute("select participant_index, account from participants").fetchall())
        self.db.conn.executemany(
            "insert or replace into meter_readings (delivery_start, account, net_wh, block) values (?, ?, ?, ?)",
            [(a["deliveryStart"], accounts[i], net, entry["blockNumber"]) for i, net in unpack_readings(a["readings"])],
        )

    def _on_FillsSettled(self, a: dict[str, Any], entry: LogReceipt) -> None:
        """A settlement chunk: one outcome per recorded order of the slot, from ``firstPosition`` on
        in arrival order. A buyer pays its fill at the clearing price and the network charge, and
        gets its escrow back; a seller is paid; the DSO's account receives the network charges."""
        ds = a["deliveryStart"]
        outcomes = unpack_outcomes(a["outcomes"])
        rows = self.db.execute_returning_dicts(
            "select o.order_hash, o.prosumer, o.side, o.status, f.filled_wh, f.amount from orders o "
            "left join fills f using (order_hash) where o.delivery_start = ? order by o.block, o.log_index "
            "limit ? offset ?",
            [ds, len(outcomes), a["firstPosition"]],
        )
        dso = self.ledger.roles.dso.address
        for item, (row, outcome) in enumerate(zip(rows, outcomes, strict=True)):
            if row["status"] == "cancelled" or not row["filled_wh"]:
                continue
            order_hash, prosumer = row["order_hash"], row["prosumer"]
            self.db.execute(
                "insert or replace into settlements (order_hash, prosumer, delivery_start, deviation_wh, payment, "
                "imbalance_charge, network_charge, block) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    order_hash,
                    prosumer,
                    ds,
                    outcome.deviation_wh,
                    outcome.payment,
                    outcome.imbalance_charge,
                    outcome.network_charge,
                    entry["blockNumber"],
                ],
            )
            self.db.execute("update orders set status = 'settled' where order_hash = ?", [order_hash])
            if row["side"] == BUY:
                self._payment(entry, prosumer, "purchase", -row["amount"], ds, order_hash, item=item)
                if outcome.network_charge:
                    charge = outcome.network_charge
                    self._payment(entry, prosumer, "network_charge", -charge, ds, order_hash, item=item)
                    self._payment(entry, dso, "network_charge", charge, ds, order_hash, item=item, slot=4)
            if outcome.payment:
                kind = "sale" if row["side"] == SELL else "surplus_buyback"
                self._payment(entry, prosumer, kind, outcome.payment, ds, order_hash, item=item)
            if outcome.imbalance_charge:
                self._payment(entry, prosumer, "imbalance_charge", -outcome.imbalance_charge, ds, order_hash, item=item)

    def _on_ImbalanceUncollected(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self._payment(entry, a["account"], "uncollected", a["amount"], a["deliveryStart"], None)

    # ─────────────── flexibility market ───────────────

    def _on_RequestPosted(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute(
            "insert or replace into flex_requests (request_id, dso, service, direction, baseline, congestion_bus, "
            "power_w, window_start, window_slots, bid_deadline, min_performance_bps, max_availability_price_per_kwh, "
            "max_utilisation_price_per_kwh, escrow, status, awarded_power_w, award_report_hash, paid, refunded) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', 0, '', 0, 0)",
            [
                a["requestId"],
                a["dso"],
                a["service"],
                a["direction"],
                a["baseline"],
                a["congestionBus"],
                a["powerW"],
                a["windowStart"],
                a["windowSlots"],
                a["bidDeadline"],
                a["minPerformanceBps"],
                a["maxAvailabilityPricePerKWh"],
                a["maxUtilisationPricePerKWh"],
                a["escrow"],
            ],
        )

    def _on_OfferSubmitted(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute(
            "insert or replace into flex_offers (offer_id, request_id, provider, power_w, availability_price_per_kwh, "
            "utilisation_price_per_kwh, bus, awarded, availability_payment, utilisation_payment) "
            "values (?, ?, ?, ?, ?, ?, ?, 0, 0, 0)",
            [
                to_hex(a["offerId"]),
                a["requestId"],
                a["provider"],
                a["powerW"],
                a["availabilityPricePerKWh"],
                a["utilisationPricePerKWh"],
                a["bus"],
            ],
        )

    def _on_OfferWithdrawn(self, a: dict[str, Any], entry: LogReceipt) -> None:
        # A withdrawn offer can no longer be awarded: it leaves the candidates the award reads.
        self.db.execute("delete from flex_offers where offer_id = ?", [to_hex(a["offerId"])])

    def _on_Awarded(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute(
            "update flex_requests set status = 'awarded', awarded_power_w = ?, award_report_hash = ? "
            "where request_id = ?",
            [a["awardedPowerW"], to_hex(a["awardReportHash"]), a["requestId"]],
        )
        self.db.conn.executemany(
            "update flex_offers set awarded = 1 where offer_id = ?", [(to_hex(o),) for o in a["offerIds"]]
        )

    def _on_Activated(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute(
            "insert or replace into flex_deliveries (offer_id, slot, activated_w, ordered_wh) values (?, ?, ?, ?)",
            [to_hex(a["offerId"]), a["slot"], a["powerW"], a["orderedWh"]],
        )

    def _on_Measured(self, a: dict[str, Any], entry: LogReceipt) -> None:
        offer_id = to_hex(a["offerId"])
        self.db.execute(
            "insert into flex_deliveries (offer_id, slot, activated_w, ordered_wh) values (?, ?, 0, 0) "
            "on conflict (offer_id, slot) do nothing",
            [offer_id, a["slot"]],
        )
        self.db.execute(
            "update flex_deliveries set baseline_wh = ?, actual_wh = ?, delivered_wh = ?, deficiency_wh = ? "
            "where offer_id = ? and slot = ?",
            [a["baselineWh"], a["actualWh"], a["deliveredWh"], a["deficiencyWh"], offer_id, a["slot"]],
        )

    def _on_OfferSettled(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute(
            "update flex_offers set availability_payment = ?, utilisation_payment = ? where offer_id = ?",
            [a["availabilityPayment"], a["utilisationPayment"], to_hex(a["offerId"])],
        )

    def _on_RequestSettled(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute(
            "update flex_requests set status = 'settled', paid = ?, refunded = ? where request_id = ?",
            [a["paid"], a["refunded"], a["requestId"]],
        )

    def _on_SlotSettled(self, a: dict[str, Any], entry: LogReceipt) -> None:
        self.db.execute(
            "update slots set status = 'settled', paid_to_sellers = ?, to_balancing = ?, from_balancing = ?, "
            "network_charges = ?, settled_block = ? where delivery_start = ?",
            [
                a["paidToSellers"],
                a["toBalancing"],
                a["fromBalancing"],
                a["networkCharges"],
                entry["blockNumber"],
                a["deliveryStart"],
            ],
        )


_KIND_SLOT = {
    "deposit": 0,
    "withdrawal": 0,
    "purchase": 0,
    "uncollected": 0,
    "sale": 1,
    "surplus_buyback": 1,
    "imbalance_charge": 2,
    "network_charge": 3,  # the buyer's; the DSO's receipt of it takes 4
}
