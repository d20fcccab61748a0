"""The calldata packer for a feeder's batches (``transactions.fast_encode``) against eth-abi."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.chain.transactions import fast_encode

words = st.integers(0, 2**256 - 1)
uint64s = st.integers(0, 2**64 - 1)
hashes = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))

# The argument lists of the calls a feeder sends in bulk, by their ABI types.
CALLS = {
    "relayOrders": (
        ["(uint256,uint256,bytes32,bytes32)[]"],
        st.tuples(st.lists(st.tuples(words, words, hashes, hashes))),
    ),
    "commitClearing": (
        ["uint40", "uint64", "bytes32", "bytes32", "uint16", "uint16", "(bytes32,uint256,uint64)[]"],
        st.tuples(
            st.integers(0, 2**40 - 1),
            uint64s,
            hashes,
            hashes,
            st.integers(0, 2**16 - 1),
            st.integers(0, 2**16 - 1),
            st.lists(st.tuples(hashes, words, uint64s)),
        ),
    ),
    "settle": (
        ["uint40", "uint16", "(uint256,uint64)[]"],
        st.tuples(st.integers(0, 2**40 - 1), st.integers(0, 2**16 - 1), st.lists(st.tuples(words, uint64s))),
    ),
    "postMeterReadings": (["uint40", "bytes"], st.tuples(st.integers(0, 2**40 - 1), st.binary(max_size=300))),
    "depositFor": (["address[]", "uint256[]"], st.tuples(st.lists(addresses), st.lists(words))),
    "registerMany": (
        ["address[]", "uint64[]", "uint32[]", "uint32[]"],
        st.tuples(
            st.lists(addresses),
            st.lists(uint64s),
            st.lists(st.integers(0, 2**32 - 1)),
            st.lists(st.integers(0, 2**32 - 1)),
        ),
    ),
    "signed": (
        ["int64", "int256", "bool"],
        st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**255), 2**255 - 1), st.booleans()),
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_fast_encoding_equals_eth_abi(name) -> None:
    types, arguments = CALLS[name]

    @settings(max_examples=60, deadline=None)
    @given(arguments)
    def check(values) -> None:
        assert fast_encode(types, list(values)) == abi_encode(types, list(values))

    check()


@pytest.mark.parametrize(
    ("types", "values"),
    [
        (["uint8"], [256]),  # out of range: eth-abi raises what is wrong
        (["uint8"], [-1]),
        (["int8"], [128]),
        (["uint8"], [True]),  # a bool is not an integer here
        (["bytes32"], [b"\0" * 31]),
        (["address"], ["0x" + "ab" * 20]),  # not checksummed: eth-abi decides
        (["string"], ["text"]),
        (["(uint8,(uint8))[]"], [[(1, (2,))]]),
    ],
)
def test_what_it_does_not_take_goes_to_eth_abi(types, values) -> None:
    assert fast_encode(types, values) is None
