"""Every custom error the contracts can raise decodes to a domain exception with a message."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from gridledger.chain import reverts
from gridledger.chain.reverts import RevertDecoder
from gridledger.errors import LedgerError

CONTRACTS = ("EnergyMarket", "FlexibilityMarket", "ParticipantRegistry")


def _sample(abi_type: str) -> Any:
    """A valid value of an ABI type (1 for numbers and enums, so that status names resolve)."""
    if abi_type == "address":
        return "0x" + "11" * 20
    if abi_type == "bool":
        return True
    if abi_type == "string":
        return "x"
    if abi_type.startswith("bytes"):
        return b"\x01" * int(abi_type[5:] or 1)
    return 1  # uint*, int*


def _errors(build) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for name in CONTRACTS:
        for item in build[name].abi:
            if item["type"] == "error":
                seen[item["name"]] = item
    return sorted(seen.values(), key=lambda item: item["name"])


def test_every_custom_error_of_the_contracts_has_a_decoder_entry(build) -> None:
    missing = [item["name"] for item in _errors(build) if item["name"] not in reverts._MESSAGES]
    assert missing == []
    # The removed catch-all is gone from both sides.
    assert "InvalidRequest" not in {item["name"] for item in _errors(build)}
    assert "InvalidRequest" not in reverts._MESSAGES


def test_every_custom_error_decodes_to_its_domain_exception_and_message(build) -> None:
    decoder = RevertDecoder(build[name].abi for name in CONTRACTS)
    for item in _errors(build):
        types = [i["type"] for i in item["inputs"]]
        selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
        data = selector + abi_encode(types, [_sample(t) for t in types])
        exc = decoder.to_exception(data, action="a call")
        cls, _ = reverts._MESSAGES[item["name"]]
        assert type(exc) is cls, item["name"]
        assert exc.error == item["name"]
        assert str(exc).startswith("a call rejected: ") and f"{item['name']}(" not in str(exc)


@pytest.mark.parametrize(
    ("error", "args", "phrase"),
    [
        ("RequestPowerZero", {}, "power must be above 0 W"),
        ("InvalidWindowSlots", {"windowSlots": 97, "maxWindowSlots": 96}, "has 97 slots; the window must have 1 to 96"),
        ("WindowNotOnSlotBoundary", {"windowStart": 1_000}, "must start on a slot boundary"),
        ("BidDeadlinePassed", {"bidDeadline": 900, "nowTs": 1_800}, "the bid deadline must be in the future"),
        ("BidDeadlineNotBeforeWindow", {"bidDeadline": 1_800, "windowStart": 900}, "must be before the window"),
        ("InvalidMinPerformance", {"minPerformanceBps": 0, "maxBps": 10_000}, "must be 1 to 10000 basis points"),
        ("InvalidCapacity", {"capacityW": 3, "minCapacityW": 4}, "capacity 3 W is invalid; it must be at least 4 W"),
        (
            "ImbalancePricesInverted",
            {"shortfallPricePerKWh": 40_000, "surplusPricePerKWh": 50_000},
            "must be at or above the surplus price",
        ),
    ],
)
def test_the_new_refusals_say_what_was_wrong_and_what_is_allowed(error, args, phrase) -> None:
    cls, message = reverts._MESSAGES[error]
    assert issubclass(cls, LedgerError)
    assert phrase in message(args)
