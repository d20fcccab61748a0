"""Turn the contracts' custom errors into GridLedger's domain exceptions.

Every revert carries a 4-byte selector and ABI-encoded arguments. This module decodes them
from the compiled ABIs and writes a message that says what was wrong and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gridledger import errors
from gridledger.units import SLOT_SECONDS, tokens

Args = dict[str, Any]


def clock(ts: int) -> str:
    """A unix time as the UTC wall-clock time a person reads (``2026-11-26 10:15 UTC``)."""
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()[:12] + "…"
    return str(value)


def _kwh_price(value: int) -> str:
    return f"{tokens(value):.4f} token/kWh"


_REQUEST_STATUS = ("unknown", "open", "awarded", "settled")

_MESSAGES: dict[str, tuple[type[errors.LedgerError], Callable[[Args], str]]] = {
    "InvalidSignature": (
        errors.SignatureRejected,
        lambda a: (
            f"order {_short(a['orderHash'])}: signature recovers to {a['recovered']}, "
            f"but the order names prosumer {a['prosumer']}; only the prosumer's own signature is accepted"
        ),
    ),
    "NotRegistered": (
        errors.NotRegisteredError,
        lambda a: f"{a['account']} is not a registered participant; the facilitator must register it first",
    ),
    "NonceAlreadyUsed": (
        errors.ReplayRejected,
        lambda a: (
            f"nonce {a['nonce']} of {a['prosumer']} is used up: a prosumer's nonces only go up, and the lowest "
            f"it may still use is {a['nextNonce']} (every lower one was used, skipped or burnt by a cancellation)"
        ),
    ),
    "NonceTooLarge": (
        errors.LedgerError,
        lambda a: f"nonce {a['nonce']} of {a['prosumer']} is too large: a nonce must be below {a['limit']:,}",
    ),
    "OrderExpired": (
        errors.OrderExpiredError,
        lambda a: (
            f"order {_short(a['orderHash'])} expired at {clock(a['expiry'])}; the chain's time is {clock(a['nowTs'])}"
        ),
    ),
    "GateClosed": (
        errors.GateClosedError,
        lambda a: (
            f"order {_short(a['orderHash'])} for the slot starting {clock(a['deliveryStart'])} "
            f"came at {clock(a['nowTs'])}, but the gate closed at {clock(a['gateClosure'])}"
        ),
    ),
    "InvalidDeliveryStart": (
        errors.LedgerError,
        lambda a: (
            f"delivery start {a['deliveryStart']} is not a slot the ledger takes: it must be a multiple of "
            f"{SLOT_SECONDS} s (15-minute slots) and before {a['latest']} ({clock(a['latest'])})"
        ),
    ),
    "InvalidEnergy": (
        errors.LedgerError,
        lambda a: (
            f"order {_short(a['orderHash'])} asks for {a['energyWh']} Wh; allowed is 1 to "
            f"{a['maxEnergyWh']} Wh (the connection's capacity over one 15-minute slot)"
        ),
    ),
    "InsufficientBalance": (
        errors.InsufficientFunds,
        lambda a: (
            f"{a['account']} has {a['available']} base units available in the market "
            f"but {a['required']} are needed; deposit more first"
        ),
    ),
    "NotOrderOwner": (
        errors.SignatureRejected,
        lambda a: (
            f"{a['caller']} may not place or cancel order {_short(a['orderHash'])}: "
            f"only its prosumer {a['prosumer']} may"
        ),
    ),
    "OrderNotOpen": (
        errors.LedgerError,
        lambda a: (
            f"order {_short(a['orderHash'])} is not an open order on the ledger "
            "(not recorded at the position given, or already cancelled)"
        ),
    ),
    "MalformedOrder": (
        errors.LedgerError,
        lambda a: f"packed order {a['index']} of the batch has bits set outside its fields",
    ),
    "GateNotClosed": (
        errors.ClearingRejected,
        lambda a: (
            f"slot {clock(a['deliveryStart'])} cannot be cleared before its gate closes at "
            f"{clock(a['gateClosure'])}; the chain's time is {clock(a['nowTs'])}"
        ),
    ),
    "NetworkReportMissing": (
        errors.ClearingRejected,
        lambda a: (
            f"slot {clock(a['deliveryStart'])} has no network validation report: a clearing result "
            "must carry the hash of the report it passed and the network model's version"
        ),
    ),
    "SlotAlreadyCleared": (
        errors.ClearingRejected,
        lambda a: f"slot {clock(a['deliveryStart'])} was already cleared; a slot clears once",
    ),
    "FillExceedsOrder": (
        errors.ClearingRejected,
        lambda a: f"fill of {a['filledWh']} Wh for order {_short(a['orderHash'])} exceeds its {a['energyWh']} Wh",
    ),
    "PriceBeyondLimit": (
        errors.ClearingRejected,
        lambda a: (
            f"clearing price {_kwh_price(a['clearingPricePerKWh'])}"
            + (f" plus the network tariff {_kwh_price(a['networkTariffPerKWh'])}" if a["networkTariffPerKWh"] else "")
            + f" crosses the limit {_kwh_price(a['limitPricePerKWh'])} of order {_short(a['orderHash'])}"
            + (
                " (a buyer's limit is all-in: price plus tariff must be at or below it)"
                if a["networkTariffPerKWh"]
                else ""
            )
        ),
    ),
    "EnergyImbalance": (
        errors.ClearingRejected,
        lambda a: (
            f"bought energy {a['boughtWh']} Wh differs from sold energy {a['soldWh']} Wh; "
            "a clearing result must balance"
        ),
    ),
    "IncompleteClearing": (
        errors.ClearingRejected,
        lambda a: (
            f"the clearing result lists {a['included']} orders but slot "
            f"{clock(a['deliveryStart'])} has {a['recorded']} recorded orders; "
            "every recorded order needs a fill (0 allowed; a cancelled one flagged), once, and every chunk "
            "but the last leaves orders for the next"
        ),
    ),
    "OrdersMismatch": (
        errors.ClearingRejected,
        lambda a: (
            f"the fills given for slot {clock(a['deliveryStart'])} from position {a['position']} on are not the "
            "slot's recorded orders in arrival order (one left out, listed twice, replaced or changed)"
        ),
    ),
    "CancellationsMismatch": (
        errors.ClearingRejected,
        lambda a: (
            f"order {_short(a['orderHash'])} is flagged cancelled but was not cancelled"
            if a["cancelled"] == 0 and any(a["orderHash"])
            else f"the clearing of slot {clock(a['deliveryStart'])} flags {a['flagged']} cancelled orders; "
            f"the slot has {a['cancelled']}: every cancelled order, and only those, must be flagged"
        ),
    ),
    "ChunkOutOfOrder": (
        errors.LedgerError,
        lambda a: (
            f"chunk {a['given']} of slot {clock(a['deliveryStart'])} came where chunk {a['expected']} is next; "
            "chunks go in order, once each"
        ),
    ),
    "ClearingTermsChanged": (
        errors.ClearingRejected,
        lambda a: (
            f"a clearing chunk of slot {clock(a['deliveryStart'])} changes the price, report, model or number "
            "of chunks that its chunk 0 set; every chunk repeats them"
        ),
    ),
    "InvalidChunkCount": (
        errors.ClearingRejected,
        lambda a: f"a clearing in {a['chunks']} chunks is not possible: 1 to 65,535 chunks are allowed",
    ),
    "MalformedFill": (
        errors.ClearingRejected,
        lambda a: f"the packed fill at position {a['position']} has bits set outside its fields",
    ),
    "SlotNotCleared": (
        errors.SettlementRejected,
        lambda a: (
            f"slot {clock(a['deliveryStart'])} cannot settle: its status is "
            f"{['open', 'clearing', 'cleared', 'settling', 'settled'][a['status']]}, and only a cleared slot "
            "settles (once)"
        ),
    ),
    "DeliveryNotEnded": (
        errors.SettlementRejected,
        lambda a: (
            f"delivery of slot {clock(a['deliveryStart'])} ends at {clock(a['deliveryEnd'])}; "
            f"the chain's time is {clock(a['nowTs'])}"
        ),
    ),
    "MeterReadingAlreadyPosted": (
        errors.SettlementRejected,
        lambda a: (
            f"a reading of {a['account']} for slot {clock(a['deliveryStart'])} is already posted; readings are final"
        ),
    ),
    "MeterReadingMissing": (
        errors.SettlementRejected,
        lambda a: f"slot {clock(a['deliveryStart'])} cannot settle without a meter reading of {a['account']}",
    ),
    "FillsMismatch": (
        errors.SettlementRejected,
        lambda a: (
            f"the fills given for chunk {a['chunk']} of slot {clock(a['deliveryStart'])} are not the committed "
            f"ones (committed hash {_short(a['committed'])}, given {_short(a['given'])})"
        ),
    ),
    "MalformedReadings": (
        errors.SettlementRejected,
        lambda a: (
            f"meter readings of {a['length']} bytes are malformed: each is 8 bytes (a uint32 participant number "
            "and an int32 Wh from −2,147,483,647 to 2,147,483,647)"
        ),
    ),
    "SettlementInProgress": (
        errors.SettlementRejected,
        lambda a: (
            f"{a['account']}'s metered energy is still being allocated in the settlement of slot "
            f"{clock(a['otherSlot'])}, which is under way: finish that settlement first"
        ),
    ),
    "TariffGateClosed": (
        errors.LedgerError,
        lambda a: (
            f"the network tariff of slot {clock(a['deliveryStart'])} can no longer be set: its gate closed at "
            f"{clock(a['gateClosure'])} (the chain's time is {clock(a['nowTs'])}); tariffs are announced before "
            "gate closure"
        ),
    ),
    "EmptyTariff": (errors.LedgerError, lambda a: "a network tariff needs at least one slot's price per kWh"),
    "LengthMismatch": (
        errors.LedgerError,
        lambda a: f"array arguments differ in length ({a['a']} and {a['b']})",
    ),
    "ZeroAmount": (errors.LedgerError, lambda a: "the amount must be greater than zero"),
    "ImbalancePricesInverted": (
        errors.LedgerError,
        lambda a: (
            f"shortfall price {_kwh_price(a['shortfallPricePerKWh'])} is below the surplus price "
            f"{_kwh_price(a['surplusPricePerKWh'])}; the shortfall price must be at or above the surplus price, "
            "so that not delivering never pays better than delivering"
        ),
    ),
    "AlreadyRegistered": (
        errors.LedgerError,
        lambda a: f"{a['account']} is already registered; a participant registers once",
    ),
    "MeterIdTaken": (
        errors.LedgerError,
        lambda a: f"meter {a['meterId']} already belongs to {a['account']}; meter ids are unique",
    ),
    "InvalidCapacity": (
        errors.LedgerError,
        lambda a: (
            f"connection capacity {a['capacityW']} W is invalid; it must be at least {a['minCapacityW']} W, "
            "so that the connection carries at least 1 Wh in a 15-minute slot"
        ),
    ),
    "ZeroAccount": (errors.LedgerError, lambda a: "the zero address cannot be registered"),
    "UnknownParticipant": (
        errors.NotRegisteredError,
        lambda a: (
            f"there is no participant number {a['index']}: {a['count']} participants are registered "
            f"(numbers 0 to {a['count'] - 1})"
        ),
    ),
    # ── flexibility market ──
    "RequestPowerZero": (
        errors.FlexRejected,
        lambda a: "invalid flexibility request: it asks for 0 W; power must be above 0 W",
    ),
    "InvalidWindowSlots": (
        errors.FlexRejected,
        lambda a: (
            f"invalid flexibility request: its window has {a['windowSlots']} slots; "
            f"the window must have 1 to {a['maxWindowSlots']} slots of 15 minutes"
        ),
    ),
    "WindowNotOnSlotBoundary": (
        errors.FlexRejected,
        lambda a: (
            f"invalid flexibility request: the window starts at {a['windowStart']} ({clock(a['windowStart'])}); "
            f"the window must start on a slot boundary (a multiple of {SLOT_SECONDS} s)"
        ),
    ),
    "BidDeadlinePassed": (
        errors.FlexRejected,
        lambda a: (
            f"invalid flexibility request: the bid deadline {clock(a['bidDeadline'])} has passed "
            f"(the ledger's time is {clock(a['nowTs'])}); the bid deadline must be in the future"
        ),
    ),
    "BidDeadlineNotBeforeWindow": (
        errors.FlexRejected,
        lambda a: (
            f"invalid flexibility request: the bid deadline {clock(a['bidDeadline'])} is not before the window's "
            f"start {clock(a['windowStart'])}; the bid deadline must be before the window"
        ),
    ),
    "InvalidMinPerformance": (
        errors.FlexRejected,
        lambda a: (
            f"invalid flexibility request: a minimum performance of {a['minPerformanceBps']} basis points; "
            f"the minimum performance must be 1 to {a['maxBps']} basis points"
        ),
    ),
    "UnknownRequest": (errors.FlexRejected, lambda a: f"there is no flexibility request {a['requestId']}"),
    "WrongRequestStatus": (
        errors.FlexRejected,
        lambda a: f"request {a['requestId']} is {_REQUEST_STATUS[a['status']]}, which does not allow this",
    ),
    "OfferAfterDeadline": (
        errors.FlexRejected,
        lambda a: (
            f"offers for request {a['requestId']} closed at {clock(a['bidDeadline'])}; "
            f"the ledger's time is {clock(a['nowTs'])}"
        ),
    ),
    "OutsideWindow": (
        errors.FlexRejected,
        lambda a: (
            f"slot {clock(a['slot'])} is outside request {a['requestId']}'s window "
            f"{clock(a['windowStart'])} to {clock(a['windowEnd'])} (slots start every {SLOT_SECONDS} s)"
        ),
    ),
    "PriceAboveCap": (
        errors.FlexRejected,
        lambda a: (
            f"offer {_short(a['offerId'])}: price {_kwh_price(a['price'])} is above the DSO's cap "
            f"{_kwh_price(a['cap'])}"
        ),
    ),
    "InvalidPower": (
        errors.FlexRejected,
        lambda a: f"offer {_short(a['offerId'])}: {a['powerW']} W is not allowed; it must be 1 to {a['maxW']} W",
    ),
    "ConnectionPointMismatch": (
        errors.FlexRejected,
        lambda a: (
            f"offer {_short(a['offerId'])} names bus {a['offerBus']}, but the provider is connected at "
            f"bus {a['registeredBus']}"
        ),
    ),
    "ProviderNotRegistered": (
        errors.NotRegisteredError,
        lambda a: f"{a['provider']} is not a registered participant: only registered providers offer flexibility",
    ),
    "InvalidOfferSignature": (
        errors.SignatureRejected,
        lambda a: (
            f"offer {_short(a['offerId'])}: signature recovers to {a['recovered']}, not to provider {a['provider']}"
        ),
    ),
    "OfferNonceUsed": (errors.ReplayRejected, lambda a: f"offer nonce {a['nonce']} of {a['provider']} was used"),
    "UftpKeyNotBound": (
        errors.SignatureRejected,
        lambda a: (
            f"{a['provider']} has bound no UFTP key: a provider authorises UFTP offers by binding its aggregator's "
            "key with bindUftpKey first"
        ),
    ),
    "UnknownOffer": (errors.FlexRejected, lambda a: f"there is no offer {_short(a['offerId'])} for this request"),
    "OfferNotAwarded": (errors.FlexRejected, lambda a: f"offer {_short(a['offerId'])} was not awarded"),
    "AwardTooEarly": (
        errors.FlexRejected,
        lambda a: f"request {a['requestId']} takes offers until {clock(a['bidDeadline'])}; award after that",
    ),
    "AwardTooLate": (
        errors.FlexRejected,
        lambda a: (
            f"request {a['requestId']}'s window started at {clock(a['windowStart'])}; it can no longer be awarded"
        ),
    ),
    "DuplicateAward": (errors.FlexRejected, lambda a: f"offer {_short(a['offerId'])} is awarded already"),
    "ActivationAboveContract": (
        errors.FlexRejected,
        lambda a: (
            f"activation of {a['powerW']} W exceeds offer {_short(a['offerId'])}'s contracted {a['contractedW']} W"
        ),
    ),
    "AlreadyActivated": (
        errors.FlexRejected,
        lambda a: f"offer {_short(a['offerId'])} is already activated for {clock(a['slot'])}",
    ),
    "ActivationTooLate": (
        errors.FlexRejected,
        lambda a: f"slot {clock(a['slot'])} has begun ({clock(a['nowTs'])}); activate before a slot starts",
    ),
    "SlotNotEnded": (
        errors.FlexRejected,
        lambda a: f"slot {clock(a['slot'])} ends at {clock(a['slotEnd'])}; measure after that",
    ),
    "AlreadyMeasured": (
        errors.FlexRejected,
        lambda a: f"offer {_short(a['offerId'])} was already measured for {clock(a['slot'])}",
    ),
    "WindowNotEnded": (
        errors.FlexRejected,
        lambda a: f"request {a['requestId']}'s window ends at {clock(a['windowEnd'])}; settle after that",
    ),
    "MeasurementMissing": (
        errors.FlexRejected,
        lambda a: f"offer {_short(a['offerId'])} was activated for {clock(a['slot'])} but not measured",
    ),
    "NothingToClaim": (
        errors.FlexRejected,
        lambda a: (
            f"{a['account']} has nothing to claim from the flexibility market; "
            "payments and refunds are credited when a request settles"
        ),
    ),
    "NotOfferProvider": (
        errors.FlexRejected,
        lambda a: f"only offer {_short(a['offerId'])}'s provider {a['provider']} may withdraw it, not {a['caller']}",
    ),
    "OfferIsWithdrawn": (
        errors.FlexRejected,
        lambda a: f"offer {_short(a['offerId'])} was withdrawn: it can be neither awarded nor withdrawn again",
    ),
    "OfferAlreadyAwarded": (
        errors.FlexRejected,
        lambda a: f"offer {_short(a['offerId'])} is awarded and binds its provider: it cannot be withdrawn",
    ),
    "WithdrawalAfterDeadline": (
        errors.FlexRejected,
        lambda a: (
            f"request {a['requestId']} took offers until {clock(a['bidDeadline'])}; offers can be withdrawn until "
            "then, not after"
        ),
    ),
    "RevocationMissing": (
        errors.FlexRejected,
        lambda a: (
            f"UFTP offer {_short(a['offerId'])} is withdrawn by the facilitator only on the hash of the "
            "aggregator's signed FlexOfferRevocation, not on zero"
        ),
    ),
    "NotUftpOffer": (
        errors.FlexRejected,
        lambda a: f"offer {_short(a['offerId'])} did not come through UFTP: only its provider withdraws it",
    ),
    # ── OpenZeppelin ──
    "SafeCastOverflowedUintDowncast": (
        errors.LedgerError,
        lambda a: f"the value {a['value']} does not fit in {a['bits']} bits; it must be below 2^{a['bits']}",
    ),
    "SafeCastOverflowedIntDowncast": (
        errors.LedgerError,
        lambda a: (
            f"the value {a['value']} does not fit in a signed {a['bits']}-bit number; it must lie within "
            f"±2^{a['bits'] - 1}"
        ),
    ),
    "SafeCastOverflowedIntToUint": (
        errors.LedgerError,
        lambda a: f"the value {a['value']} is negative where only a non-negative amount is possible",
    ),
    "AccessControlUnauthorizedAccount": (
        errors.LedgerError,
        lambda a: f"{a['account']} lacks the role {_short(a['neededRole'])} this call requires",
    ),
    "AccessControlBadConfirmation": (
        errors.LedgerError,
        lambda a: "an account may renounce only its own roles: the confirmation must be the caller",
    ),
    "ReentrancyGuardReentrantCall": (
        errors.LedgerError,
        lambda a: "the market was re-entered during a deposit or withdrawal; a token must not call back",
    ),
    "SafeERC20FailedOperation": (
        errors.LedgerError,
        lambda a: f"the token {a['token']} refused a transfer; check the balance and the allowance",
    ),
    "InvalidShortString": (errors.LedgerError, lambda a: "a short string (the EIP-712 name) is malformed"),
    "StringTooLong": (
        errors.LedgerError,
        lambda a: f"the string {a['str']!r} is too long for a short string (at most 31 bytes)",
    ),
    "ERC20InsufficientAllowance": (
        errors.InsufficientFunds,
        lambda a: (
            f"allowance of {a['spender']} is {a['allowance']} base units but {a['needed']} are "
            "needed; approve the market first"
        ),
    ),
    "WithdrawalExpired": (
        errors.OrderExpiredError,
        lambda a: (
            f"the signed withdrawal of {a['owner']} was valid until {clock(a['deadline'])}; the chain's time is "
            f"{clock(a['nowTs'])}: sign a new one"
        ),
    ),
    "WithdrawalNonceUsed": (
        errors.ReplayRejected,
        lambda a: (
            f"the signed withdrawal of {a['owner']} carries nonce {a['nonce']}, but the next unused one is "
            f"{a['expected']}: each signed withdrawal counts once, in order"
        ),
    ),
    "WithdrawalSignatureInvalid": (
        errors.SignatureRejected,
        lambda a: (
            f"the signed withdrawal recovers to {a['recovered']}, not to {a['owner']}: only the owner of a market "
            "balance may sign its withdrawal"
        ),
    ),
    "ERC2612ExpiredSignature": (
        errors.OrderExpiredError,
        lambda a: f"the deposit permit expired at {clock(a['deadline'])}: sign a new one",
    ),
    "ECDSAInvalidSignature": (
        errors.SignatureRejected,
        lambda a: "the signature recovers to no address: it is not a secp256k1 signature of this message",
    ),
    "ERC2612InvalidSigner": (
        errors.SignatureRejected,
        lambda a: (
            f"the deposit permit recovers to {a['signer']}, not to {a['owner']}: it was signed by another key or "
            "for another amount, deadline or nonce (a permit counts once)"
        ),
    ),
    "ERC20InsufficientBalance": (
        errors.InsufficientFunds,
        lambda a: f"{a['sender']} holds {a['balance']} base units of the token but {a['needed']} are needed",
    ),
}


def refusal(name: str, args: Args, *, action: str) -> errors.LedgerError:
    """The domain exception a contract's custom error ``name`` with ``args`` decodes to: for a
    refusal the backend finds before it sends (the same class and message as the contract's)."""
    cls, message = _MESSAGES.get(name, (errors.LedgerError, lambda a: f"{name}({a})"))
    exception: errors.LedgerError = cls(f"{action} rejected: {message(args)}", error=name, args_=args)
    return exception


class RevertDecoder:
    """Maps revert data to domain exceptions, using the custom errors of the given ABIs."""

    def __init__(self, abis: Iterable[list[dict[str, Any]]]) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = [_abi_type(i) for i in item["inputs"]]
                selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                self._errors[selector] = (item["name"], types, [i["name"] for i in item["inputs"]])

    def decode(self, data: bytes) -> tuple[str, Args] | None:
        known = self._errors.get(bytes(data[:4]))
        if known is None:
            return None
        name, types, names = known
        values = [
            to_checksum_address(v) if t == "address" else v
            for t, v in zip(types, abi_decode(types, bytes(data[4:])), strict=True)
        ]
        return name, dict(zip(names, values, strict=True))

    def to_exception(self, data: bytes | str, *, action: str) -> errors.LedgerError:
        raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else data
        decoded = self.decode(raw)
        if decoded is None:
            return errors.LedgerError(f"{action} reverted with unknown data 0x{raw.hex()}")
        name, args = decoded
        return refusal(name, args, action=action)


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])
