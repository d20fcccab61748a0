"""A small community trades by itself for a few slots over HTTP on the market clock: its slots
are cleared and settled on-chain, money is conserved, and the DSO's forecast posts a request that
the clock awards at its deadline."""

from __future__ import annotations

from gridledger.agents.community import STARTING_TOKENS, run_community
from gridledger.config import Settings

JUNE_MORNING = 1_813_568_400  # 2027-06-21 09:00 UTC: PV exports, households import


def test_a_small_community_clears_and_settles_its_slots_on_chain(tmp_path) -> None:
    settings = Settings(chain="embedded", database=str(tmp_path / "community.sqlite"))
    result = run_community(
        agents=4,
        slots=2,
        seconds_per_slot=2.0,
        settings=settings,
        keystore_dir=tmp_path / "keys",
        start=JUNE_MORNING,
        dso_threshold_percent=1.0,  # any loading counts as congestion: the DSO must post a request
        timeout_s=300,
    )
    ledger = result.ledger
    assert ledger is not None
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [f"agent-{k:03d}.json" for k in range(4)]
    assert result.orders >= 2
    traded = 0
    for slot in result.slots:
        state = ledger.slot_state(slot)
        assert state.status == "settled", (slot, state)
        assert result.settlements[slot]["status"] == "settled"
        traded += result.clearings[slot]["traded_wh"]
    assert traded > 0  # sellers with PV met buyers without
    # Money is conserved: what the agents deposited is in their market accounts, less what
    # left for the balancing account and the DSO (imbalances and network charges).
    agents = [a.account.address for a in result.agents]
    held = sum(sum(ledger.account_of(a)) for a in agents)
    others = sum(ledger.account_of(a)[0] for a in (ledger.roles.balancing.address, ledger.roles.dso.address))
    assert held + others == STARTING_TOKENS * len(agents)
    # Every agent signed its own deposit: none holds tokens outside the market, none holds gas.
    assert all(ledger.token_balance(a) == 0 and ledger.chain.w3.eth.get_balance(a) == 0 for a in agents)
    # Every fourth agent has an EV (away at 09:00: it charges at night); its connection carries the charger too.
    assert [a.ev is not None for a in result.agents] == [False, False, False, True]
    ev_agent = result.agents[3]
    assert ledger.registry.functions.participant(ev_agent.account.address).call()[2] >= 10_000 + ev_agent.ev.power_w
    # The DSO's forecast found "congestion" at this threshold; the clock awarded its request.
    assert len(result.flex_requests) == 1
    assert list(result.flex_status.values()) == ["awarded"]
