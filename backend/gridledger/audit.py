"""Audit: re-run a slot's clearing and network validation from public records and compare.

Anyone holding the chain's events, the published network model and the facilitator's report
can do this. For each slot the audit:

1. reads the committed result from the chain (price, fills hash, report hash, model version);
2. checks that the published model is the one the commit names;
3. checks that the stored report is the one whose hash is on-chain;
4. checks that the report's baseline (the grid state the slot was checked on) is the one the
   slot's delivery time, the published model and the registrations before the commit imply;
5. re-runs the facilitation (``facilitation.facilitate``) on the orders the chain recorded, the
   model and that implied baseline, and compares the price, the fills and the report with the
   chain's;
6. for a settled slot, applies the settlement rule (``settlement.rules`` and the network tariff)
   to the committed fills, the meter readings the chain recorded, the clearing price and the
   imbalance prices, and compares every fill's outcome with what the settlement paid.

Every mismatch is named; a slot is confirmed only if there is none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from eth_utils.crypto import keccak
from shapeshifter_uftp.exceptions import InvalidSignatureException, SchemaException
from shapeshifter_uftp.uftp import FlexOffer as UftpFlexOffer
from shapeshifter_uftp.uftp import FlexOfferRevocation

from gridledger.chain.ledger import Ledger
from gridledger.chain.slots import SettlementOutcome, unpack_outcomes, unpack_readings
from gridledger.encoding import short_hex, to_hex
from gridledger.facilitation import BaselineRef, SlotInputs, facilitate
from gridledger.market.orders import Order, RecordedOrder
from gridledger.network.model import NetworkModel
from gridledger.network.validation import BatchEngine
from gridledger.settlement.rules import settle_slot
from gridledger.store.reports import ReportStore
from gridledger.uftp.codec import UftpRejection, verify_sealed
from gridledger.uftp.mapping import nonce_of, offer_from_uftp, request_from_chain
from gridledger.units import slot_energy_wh


@dataclass
class SlotAudit:
    delivery_start: int
    differences: list[str] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return not self.differences


def audit_slot(
    ledger: Ledger, model: NetworkModel, engine: BatchEngine, store: ReportStore, delivery_start: int
) -> SlotAudit:
    audit = SlotAudit(delivery_start)
    differences = audit.differences
    events = ledger.market.events.SlotCleared.get_logs(
        from_block=ledger.deployment.block, argument_filters={"deliveryStart": delivery_start}
    )
    if not events:
        differences.append("no clearing result on the chain for this slot")
        return audit
    committed = events[-1]["args"]
    if bytes(committed["networkModelVersion"]) != model.version:
        differences.append(
            f"network model version: the commit names {to_hex(committed['networkModelVersion'])}, "
            f"the published model {model.source} is {to_hex(model.version)}"
        )
    row = store.get(ledger.market.address, delivery_start)
    if row is None:
        differences.append("the facilitator's report for this slot is missing")
        return audit
    stored_hash = bytes(keccak(json.dumps(row["report"], sort_keys=True, separators=(",", ":")).encode()))
    if stored_hash != bytes(committed["networkReportHash"]):
        on_chain = to_hex(committed["networkReportHash"])
        differences.append(f"stored report hashes to {to_hex(stored_hash)}, the chain has {on_chain}")

    recorded = ledger.recorded_orders(delivery_start)
    registered = ledger.registrations(to_block=events[-1]["blockNumber"])
    bus_of = {r.account: r.bus for r in registered}
    stated = SlotInputs.from_report(delivery_start, recorded, bus_of, row["report"])
    implied = BaselineRef.for_delivery(model, model.source, delivery_start, [r.bus for r in registered])
    if stated.baseline != implied:
        differences.append(
            f"baseline: the report checks the slot on {stated.baseline.as_dict()}, but its delivery time "
            f"({datetime.fromtimestamp(delivery_start, tz=UTC):%Y-%m-%d %H:%M} UTC), the published model and the "
            f"registrations imply {implied.as_dict()}"
        )
    # The tariff is the ledger's, whatever the report says: the clearing had to respect it.
    inputs = replace(stated, baseline=implied, network_charge_per_kwh=ledger.network_tariff(delivery_start))
    differences += _flex_differences(ledger, inputs, row["report"].get("flexibility", {}))
    rerun = facilitate(model, engine, inputs)
    clearing, report = rerun.clearing, rerun.report
    if clearing.ledger_price != committed["clearingPricePerKWh"]:
        differences.append(
            f"clearing price: the chain has {committed['clearingPricePerKWh']}, re-running the auction gives "
            f"{clearing.ledger_price} (base units per kWh)"
        )
    if rerun.fills_hash != bytes(committed["fillsHash"]):
        differences.append(_fill_differences(ledger, delivery_start, recorded, rerun.network.fills))
    if report.hash != bytes(committed["networkReportHash"]) or stored_hash != report.hash:
        changed = _changed_fields(row["report"], json.loads(report.canonical()))
        differences.append(
            f"network report: the re-run differs from the stored report in {', '.join(changed) or 'its hash'}"
        )
    differences += _settlement_differences(ledger, delivery_start, committed)
    return audit


def _flex_differences(ledger: Ledger, inputs: SlotInputs, flexibility: dict[str, Any]) -> list[str]:
    """The report's flexibility candidates must be awarded offers on-chain as described, the
    activations it chose must be the ones on-chain, and so must the DSO's own activations."""
    delivery_start = inputs.delivery_start
    differences = []
    for d in inputs.dispatched:
        bus = int(ledger.flex.functions.offer(d.offer_id).call()[3])
        ordered = int(ledger.flex.functions.delivery(d.offer_id, delivery_start).call()[0])
        if (bus, ordered) != (d.bus, d.energy_wh):
            differences.append(
                f"DSO activation of {short_hex(d.offer_id)}: the report has {d.energy_wh} Wh at bus {d.bus}, "
                f"the chain {ordered} Wh at bus {bus}"
            )
    for unit in inputs.flex:
        _, _, power_w, bus, awarded, _, utilisation = ledger.flex.functions.offer(unit.offer_id).call()
        if (
            not awarded
            or bus != unit.bus
            or slot_energy_wh(power_w) != unit.max_wh
            or utilisation != unit.utilisation_price_per_kwh
        ):
            differences.append(f"flexibility candidate {short_hex(unit.offer_id)} is not an awarded offer as reported")
        ordered = int(ledger.flex.functions.delivery(unit.offer_id, delivery_start).call()[0])
        chosen = int(flexibility.get("activations", {}).get(to_hex(unit.offer_id), 0))
        if ordered != chosen:
            differences.append(
                f"activation of {short_hex(unit.offer_id)}: the report chose {chosen} Wh, the chain has {ordered} Wh"
            )
    return differences


def _committed_fills(ledger: Ledger, delivery_start: int) -> dict[bytes, int]:
    """Filled Wh by order hash, as the slot's last clearing attempt committed them."""
    filters: dict[str, Any] = {"deliveryStart": delivery_start}
    start = ledger.deployment.block
    logs = [
        *ledger.market.events.ClearingStarted.get_logs(from_block=start, argument_filters=filters),
        *ledger.market.events.OrderFilled.get_logs(from_block=start, argument_filters=filters),
    ]
    fills: dict[bytes, int] = {}
    for log in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
        if log["event"] == "ClearingStarted":
            fills = {}
        else:
            fills[bytes(log["args"]["orderHash"])] = int(log["args"]["filledWh"])
    return fills


def _settlement_differences(ledger: Ledger, delivery_start: int, committed: Any) -> list[str]:
    """Each settled fill's outcome (deviation, payment, shortfall charge, network charge) against
    the rule applied to the committed fills, the recorded readings and the slot's prices."""
    filters: dict[str, Any] = {"deliveryStart": delivery_start}
    start = ledger.deployment.block
    chunks = ledger.market.events.FillsSettled.get_logs(from_block=start, argument_filters=filters)
    if not chunks:
        return []
    outcomes: dict[int, SettlementOutcome] = {}
    for log in chunks:
        first = int(log["args"]["firstPosition"])
        outcomes.update((first + k, o) for k, o in enumerate(unpack_outcomes(log["args"]["outcomes"])))
    accounts = {r.index: r.account for r in ledger.registrations()}
    readings = {
        accounts[index]: net_wh
        for log in ledger.market.events.MeterReadingsPosted.get_logs(from_block=start, argument_filters=filters)
        for index, net_wh in unpack_readings(log["args"]["readings"])
    }
    first_chunk = min(chunks, key=lambda e: (e["blockNumber"], e["logIndex"]))
    shortfall, surplus = _imbalance_prices(ledger, first_chunk["blockNumber"])
    price, tariff = int(committed["clearingPricePerKWh"]), int(committed["networkTariffPerKWh"])
    filled = _committed_fills(ledger, delivery_start)
    slot_orders = [s for s in ledger.slot_orders(delivery_start) if not s.cancelled]
    fills: list[tuple[Order, int]] = [(s.recorded.order, filled.get(s.recorded.order_hash, 0)) for s in slot_orders]
    traded = [(s, f) for s, (_, f) in zip(slot_orders, fills, strict=True) if f]
    missing = sorted({s.recorded.order.prosumer for s, _ in traded} - set(readings))
    if missing:
        return [f"settlement: the chain has no meter reading of {', '.join(missing)}, yet the slot settled"]
    rule = settle_slot(
        fills,
        readings,
        price_per_kwh=price,
        shortfall_price_per_kwh=shortfall,
        surplus_price_per_kwh=surplus,
        network_charge_per_kwh=tariff,
    )
    differences = []
    for (slot_order, _), expected in zip(traded, rule.fills, strict=True):
        want = SettlementOutcome(expected.deviation_wh, expected.payment, expected.charge, expected.network_charge)
        got = outcomes.get(slot_order.position)
        if got != want:
            differences.append(
                f"settlement of order {short_hex(slot_order.recorded.order_hash)}: the chain has {_outcome(got)}, "
                f"the rule gives {_outcome(want)}"
            )
    return differences


def _outcome(o: SettlementOutcome | None) -> str:
    if o is None:
        return "no settlement"
    return (
        f"{o.deviation_wh} Wh deviation, payment {o.payment}, shortfall charge {o.imbalance_charge}, "
        f"network charge {o.network_charge}"
    )


def _imbalance_prices(ledger: Ledger, block: int) -> tuple[int, int]:
    """The (shortfall, surplus) prices in force at ``block``."""
    logs = ledger.market.events.ImbalancePricesSet.get_logs(from_block=ledger.deployment.block, to_block=block)
    last = max(logs, key=lambda e: (e["blockNumber"], e["logIndex"]))["args"]
    return int(last["shortfallPricePerKWh"]), int(last["surplusPricePerKWh"])


def _fill_differences(
    ledger: Ledger, delivery_start: int, recorded: list[RecordedOrder], expected: dict[bytes, int]
) -> str:
    on_chain = _committed_fills(ledger, delivery_start)
    wrong = [
        f"{short_hex(r.order_hash)} chain {on_chain.get(r.order_hash, 0)} Wh, re-run {expected.get(r.order_hash, 0)} Wh"
        for r in recorded
        if on_chain.get(r.order_hash, 0) != expected.get(r.order_hash, 0)
    ]
    return "fills differ: " + ("; ".join(wrong) if wrong else "same energies, different order or orders")


def _changed_fields(stored: dict[str, Any], rerun: dict[str, Any], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(stored) | set(rerun)):
        a, b = stored.get(key), rerun.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key} ({a!r} → {b!r})" if not isinstance(a, list) else f"{prefix}{key}")
    return changed


# ───────────────────────────── UFTP offers ─────────────────────────────


@dataclass
class UftpOfferAudit:
    """One on-chain offer that came through UFTP, checked against the aggregator's signed message."""

    offer_id: bytes
    source_message: bytes
    differences: list[str] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return not self.differences


def audit_uftp_offers(
    ledger: Ledger,
    fetch: Callable[[bytes], bytes | None],
    *,
    congestion_points: dict[str, int],
    time_zone: str,
    currency: str,
) -> list[UftpOfferAudit]:
    """Checks every ``OfferSourced`` offer: the message ``fetch(hash)`` returns (the sealed Body the
    facilitator serves at GET /uftp/messages/{hash}) hashes to the recorded hash, its Ed25519 seal
    verifies with the key the provider itself bound on-chain, and the offer it maps to (README,
    "UFTP field mapping") is, field for field, the one recorded: its EIP-712 hash is the offer id.
    An offer the facilitator withdrew (``withdrawUftpOffer``) must have the aggregator's signed
    FlexOfferRevocation of that FlexOffer behind it.
    ``congestion_points`` (EAN → bus), ``time_zone`` and ``currency`` are the DSO's published UFTP terms."""
    flex = ledger.flex
    bindings: dict[str, list[tuple[int, bytes]]] = {}
    for e in flex.events.UftpKeyBound.get_logs(from_block=ledger.deployment.block):
        bindings.setdefault(e["args"]["provider"], []).append((int(e["blockNumber"]), bytes(e["args"]["publicKey"])))
    # Withdrawn by the facilitator on a revocation (a provider's own withdrawal carries no message).
    revoked = {
        bytes(e["args"]["offerId"]): bytes(e["args"]["sourceMessage"])
        for e in flex.events.OfferWithdrawn.get_logs(from_block=ledger.deployment.block)
        if any(e["args"]["sourceMessage"])
    }
    audits = []
    for event in flex.events.OfferSourced.get_logs(from_block=ledger.deployment.block):
        args = event["args"]
        offer_id, provider = bytes(args["offerId"]), args["provider"]
        audit = UftpOfferAudit(offer_id, bytes(args["sourceMessage"]))
        audits.append(audit)
        audit.differences.extend(
            _uftp_differences(ledger, fetch, event, bindings, congestion_points, time_zone, currency)
        )
        if bytes(flex.functions.offerSource(offer_id).call()) != audit.source_message:
            audit.differences.append(
                f"offer {short_hex(offer_id)} of {provider}: its recorded source differs from its event"
            )
        revocation = revoked.get(offer_id)
        if revocation is not None and not audit.differences:
            audit.differences.extend(
                _revocation_differences(fetch, revocation, audit.source_message, bytes(args["publicKey"]))
            )
    return audits


def _revocation_differences(
    fetch: Callable[[bytes], bytes | None], revocation: bytes, offer: bytes, key: bytes
) -> list[str]:
    """A UFTP offer the facilitator withdrew: the FlexOfferRevocation it recorded must be the
    aggregator's (sealed with the key the offer was made with) and name that offer's message."""
    sealed = fetch(revocation)
    if sealed is None:
        return [f"the signed UFTP revocation {to_hex(revocation)} is not available"]
    if keccak(sealed) != revocation:
        return [f"the revocation served as {to_hex(revocation)} hashes to {to_hex(keccak(sealed))}"]
    try:
        payload = verify_sealed(sealed, key)
    except (InvalidSignatureException, SchemaException):
        return [f"the revocation {to_hex(revocation)} is not a UFTP message sealed with key {to_hex(key)}"]
    offered = fetch(offer)
    offer_message_id = verify_sealed(offered, key).message_id if offered is not None else None
    if not isinstance(payload, FlexOfferRevocation) or payload.flex_offer_message_id != offer_message_id:
        return [f"the revocation {to_hex(revocation)} does not revoke the offer's FlexOffer {offer_message_id}"]
    return []


def _uftp_differences(
    ledger: Ledger,
    fetch: Callable[[bytes], bytes | None],
    event: Any,
    bindings: dict[str, list[tuple[int, bytes]]],
    congestion_points: dict[str, int],
    time_zone: str,
    currency: str,
) -> list[str]:
    args = event["args"]
    offer_id, provider, key, source = (
        bytes(args["offerId"]),
        args["provider"],
        bytes(args["publicKey"]),
        bytes(args["sourceMessage"]),
    )
    bound = [k for block, k in bindings.get(provider, []) if block <= int(event["blockNumber"])]
    if not bound or bound[-1] != key:
        return [f"{provider} had not bound UFTP key {to_hex(key)} when offer {short_hex(offer_id)} was made"]
    sealed = fetch(source)
    if sealed is None:
        return [f"the signed UFTP message {to_hex(source)} is not available"]
    if keccak(sealed) != source:
        return [f"the message served as {to_hex(source)} hashes to {to_hex(keccak(sealed))}"]
    try:
        payload = verify_sealed(sealed, key)
    except InvalidSignatureException:
        return [f"the message {to_hex(source)} is not signed with {provider}'s bound key {to_hex(key)}"]
    except SchemaException as exc:
        return [f"the message {to_hex(source)} is not a UFTP message: {exc}"]
    if not isinstance(payload, UftpFlexOffer):
        return [f"the message {to_hex(source)} is a {type(payload).__name__}, not a FlexOffer"]
    state = ledger.flex.functions.offer(offer_id).call()
    request_id = int(state[1])
    request = request_from_chain(ledger.flex.functions.request(request_id).call())
    eans = [ean for ean, bus in congestion_points.items() if bus == request.congestion_bus]
    if payload.congestion_point not in eans:
        return [
            f"the message names congestion point {payload.congestion_point}; request {request_id} is at bus "
            f"{request.congestion_bus} ({eans or 'no published EAN'})"
        ]
    try:
        mapped = offer_from_uftp(
            payload,
            request_id=request_id,
            request=request,
            ean=payload.congestion_point,
            tz=time_zone,
            currency=currency,
            provider=provider,
            bus=int(state[3]),
            nonce=nonce_of(source),
        )
    except UftpRejection as exc:
        return [f"the message does not map to an offer: {exc.reason}"]
    mapped_id = bytes(ledger.flex.functions.offerHash(mapped.as_abi()).call())
    if mapped_id != offer_id:
        return [f"the message maps to offer {to_hex(mapped_id)} ({mapped}), the ledger recorded {to_hex(offer_id)}"]
    return []
