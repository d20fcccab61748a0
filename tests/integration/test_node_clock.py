"""A devnet node restarted from a dumped state runs its clock back (anvil mines at the wall clock,
before its latest block, once the offset time travel set is gone): ``Chain.keep_clock`` sets it
forward again, and a transaction mined in a block that went back in time is recognised as such
(the cause of the clearing that "failed in block N" after node faults; see ``faults.py``)."""

from __future__ import annotations

import pytest
from tests.conftest import free_port
from tests.integration.faults import Node

from gridledger.chain.connection import Roles, connect
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import Transactor
from gridledger.config import Settings

pytestmark = pytest.mark.devnet
AHEAD_S = 7_200  # where time travel left the chain: two hours past the wall clock


def test_a_restarted_nodes_clock_is_kept_from_running_back(tmp_path) -> None:
    node = Node(free_port(), tmp_path, state=True)
    node.start()
    try:
        settings = Settings(chain="anvil", devnet_port=node.port)
        chain = connect(settings)
        assert chain.keep_clock() == 0  # a node whose clock has not run back is left alone
        chain.move_time_to(chain.now() + AHEAD_S)
        node.kill()
        node.start()  # the state, without the clock's offset
        latest = chain.now()
        pending = int(chain.w3.eth.get_block("pending")["timestamp"])
        assert latest - pending > AHEAD_S - 600  # what the node would mine next goes back in time

        behind = chain.keep_clock()
        assert behind == latest - pending
        tx = Transactor(chain, RevertDecoder([]))
        admin = Roles.from_settings(settings).admin
        receipt = tx.send_value(admin, admin.address, 1)
        mined = int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
        assert mined == latest + 1
        assert chain.keep_clock() == 0
        assert not tx._clock_ran_back(receipt)

        # A block mined while the clock is back: the transactor sees it and sets the clock forward.
        node.kill()
        node.start()
        before = chain.now()
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        back = chain.w3.eth.get_block("latest")
        assert int(back["timestamp"]) < before
        assert tx._clock_ran_back({"blockNumber": back["number"]})  # type: ignore[typeddict-item]
        receipt = tx.send_value(admin, admin.address, 1)
        assert int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]) == before + 1
    finally:
        node.kill()
