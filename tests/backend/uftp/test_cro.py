"""GridLedger's CRO desk without HTTP: sealed portfolio messages in, the response it would send
out. A connection has one aggregator at a time, a connection is a registered meter, and the
DSO's internal portfolio query finds the aggregators on a congestion point for a Period."""

from __future__ import annotations

from datetime import date

import pytest
from shapeshifter_uftp import AgrPortfolioUpdate, AgrPortfolioUpdateConnection, SignedMessage, UsefRole
from shapeshifter_uftp.transport import seal_message, to_xml
from tests.backend.uftp.conftest import EAN, TZ, keypair
from xsdata.models.datatype import XmlDate

from gridledger.errors import ConfigurationError, ConflictError, NotFoundError, SignatureError
from gridledger.sim.participants import make_prosumers
from gridledger.uftp.cro import CommonReference, connection_ean, meter_of
from gridledger.uftp.registry import UftpRegistry
from gridledger.uftp.store import MessageStore
from gridledger.wallet.mandates import Mandate, sign_mandate

CRO = "cro.test"


@pytest.fixture
def desk(ledger, tmp_path):
    a, b = make_prosumers(ledger, count=2, deposit=1, buses=[3, 4], gas_money=False)
    dso_secret, _, _ = keypair()
    cro_secret, _, _ = keypair()
    keys = {name: keypair() for name in ("agr-a.test", "agr-b.test")}
    registry = UftpRegistry.from_dict(
        {
            "dso": {"domain": "dso.test", "signing_key": dso_secret, "time_zone": TZ},
            "cro": {"domain": CRO, "signing_key": cro_secret},
            "congestion_points": {EAN: 3},
            "aggregators": [
                {"domain": d, "public_key": k[1], "endpoint": "http://x", "provider": a.address}
                for d, k in keys.items()
            ],
        }
    )
    sent: list[object] = []
    # The congestion point at bus 3 holds the connections at buses 3 and 4 (one feeder, say).
    cro = CommonReference(
        ledger,
        registry,
        MessageStore(tmp_path / "u.sqlite"),
        area=lambda bus: frozenset({3, 4}),
        send=lambda agr, m: sent.append(m),
    )
    # Their consent: A's participant to both aggregators, B's to agr-b, from June on.
    for account, meter, domain in ((a, 1000, "agr-a.test"), (a, 1000, "agr-b.test"), (b, 1001, "agr-b.test")):
        mandate(cro, account, Mandate(domain, meter, JUNE, None, 0))
    return cro, keys, sent, (a, b)


JUNE = date(2026, 6, 1)


def mandate(cro: CommonReference, account, signed: Mandate) -> str:  # type: ignore[no-untyped-def]
    """Signs ``signed`` with ``account``'s key and hands it to the CRO, as POST /cro/mandates does."""
    chain_id, registry = cro.ledger.chain.chain_id, cro.ledger.registry.address
    return cro.record_mandate(signed, sign_mandate(account, signed, chain_id=chain_id, registry_address=registry))


def post(cro: CommonReference, keys, domain: str, connections: list[tuple[str, date, date | None]], n: int) -> None:
    message = AgrPortfolioUpdate(
        version="3.1.0",
        sender_domain=domain,
        recipient_domain=CRO,
        time_stamp="2026-01-01T00:00:00+00:00",
        message_id=f"6f0c1a4e-0000-4000-8000-{n:012d}",
        conversation_id=f"6f0c1a4e-0000-4000-9000-{n:012d}",
        time_zone=TZ,
        connections=[
            AgrPortfolioUpdateConnection(
                entity_address=ean,
                start_period=XmlDate.from_date(start),
                end_period=XmlDate.from_date(end) if end else None,
            )
            for ean, start, end in connections
        ],
    )
    sealed = seal_message(message, keys[domain][0])
    body = to_xml(SignedMessage(sender_domain=domain, sender_role=UsefRole.AGR, body=sealed)).encode()
    cro.receive(body)()  # verify and keep, then process and answer


def test_a_connection_has_one_aggregator_at_a_time(desk) -> None:
    cro, keys, sent, (a, b) = desk
    ea, eb = connection_ean(1000), connection_ean(1001)  # make_prosumers' meters 1000, 1001
    june, july, august = date(2026, 6, 1), date(2026, 7, 1), date(2026, 8, 1)
    post(cro, keys, "agr-a.test", [(ea, june, date(2026, 6, 30))], 1)
    assert sent[-1].result == "Accepted"  # type: ignore[attr-defined]

    # B claims A's connection for a period that overlaps: refused, and B's other connection is not kept.
    post(cro, keys, "agr-b.test", [(eb, june, None), (ea, date(2026, 6, 15), None)], 2)
    assert sent[-1].result == "Rejected"  # type: ignore[attr-defined]
    assert sent[-1].rejection_reason == (  # type: ignore[attr-defined]
        f"Invalid Connection: {ea} is represented by agr-a.test from 2026-06-01 to 2026-06-30; a connection has "
        "one aggregator at a time"
    )
    assert cro.connections("agr-b.test", june) == []
    # From July, after A's end: accepted.
    post(cro, keys, "agr-b.test", [(eb, june, None), (ea, july, None)], 3)
    assert sent[-1].result == "Accepted"  # type: ignore[attr-defined]
    assert [(c.ean, c.account, c.bus) for c in cro.connections("agr-b.test", july)] == [
        (ea, a.address, 3),
        (eb, b.address, 4),
    ]

    # The DSO's query, asked internally before a FlexRequest goes out.
    assert cro.aggregators_on(EAN, june) == ["agr-a.test", "agr-b.test"]  # B through its connection at bus 4
    assert cro.aggregators_on(EAN, august) == ["agr-b.test"]


def test_a_connection_must_be_a_registered_meter(desk) -> None:
    cro, keys, sent, _ = desk
    post(cro, keys, "agr-a.test", [("ea1.2026-01.example.com:meter-7", date(2026, 6, 1), None)], 4)
    assert sent[-1].rejection_reason.startswith(  # type: ignore[attr-defined]
        "Invalid Connection: ea1.2026-01.example.com:meter-7 is not a connection of this grid; a connection's "
        "EntityAddress is ean. + its meter id in the participant register (18 digits, e.g. ean.000000000000001000)"
    )
    post(cro, keys, "agr-a.test", [(connection_ean(1000), date(2026, 6, 2), date(2026, 6, 1))], 5)
    assert "ends (2026-06-01) before it starts (2026-06-02)" in sent[-1].rejection_reason  # type: ignore[attr-defined]
    assert cro.store.rows("select count(*) as n from uftp_portfolio")[0]["n"] == 0
    assert meter_of("ean.000000000000001000") == 1000
    assert meter_of("ean.99999999999999999999") is None  # above uint64
    assert meter_of("ean.000000000000000000") is None


def test_a_connection_needs_its_participants_mandate(desk) -> None:
    cro, keys, sent, (_, b) = desk
    eb = connection_ean(1001)
    # B's participant has given agr-a no mandate: refused, and nothing kept.
    post(cro, keys, "agr-a.test", [(eb, JUNE, None)], 11)
    assert sent[-1].rejection_reason == (  # type: ignore[attr-defined]
        f"Invalid Connection: the participant of {eb} has not mandated agr-a.test from 2026-06-01 to open end "
        "(its mandate: none); the participant signs one with its meter's key and posts it to /cro/mandates"
    )
    assert cro.connections("agr-a.test", JUNE) == []

    # A mandate for June only covers June, not an open end.
    mandate(cro, b, Mandate("agr-a.test", 1001, JUNE, date(2026, 6, 30), 1))
    post(cro, keys, "agr-a.test", [(eb, JUNE, None)], 12)
    assert "(its mandate: meter 1001 from 2026-06-01 to 2026-06-30)" in sent[-1].rejection_reason  # type: ignore[attr-defined]
    post(cro, keys, "agr-a.test", [(eb, JUNE, date(2026, 6, 30))], 13)
    assert sent[-1].result == "Accepted"  # type: ignore[attr-defined]
    assert [c.ean for c in cro.connections("agr-a.test", date(2026, 6, 20))] == [eb]

    # The participant withdraws consent from 11 June (a newer mandate ending on the 10th): the
    # connection no longer counts after it, for the aggregator's portfolio nor the DSO's query.
    mandate(cro, b, Mandate("agr-a.test", 1001, JUNE, date(2026, 6, 10), 2))
    assert [c.ean for c in cro.connections("agr-a.test", date(2026, 6, 10))] == [eb]
    assert cro.connections("agr-a.test", date(2026, 6, 20)) == []
    assert cro.aggregators_on(EAN, date(2026, 6, 20)) == []
    # ... and is free to let agr-b represent the connection from then on, not before.
    post(cro, keys, "agr-b.test", [(eb, date(2026, 6, 10), None)], 14)
    assert sent[-1].rejection_reason == (  # type: ignore[attr-defined]
        f"Invalid Connection: {eb} is represented by agr-a.test from 2026-06-01 to 2026-06-10; a connection has "
        "one aggregator at a time"
    )
    post(cro, keys, "agr-b.test", [(eb, date(2026, 6, 11), None)], 15)
    assert sent[-1].result == "Accepted"  # type: ignore[attr-defined]
    assert cro.aggregators_on(EAN, date(2026, 6, 20)) == ["agr-b.test"]


def test_a_mandate_is_the_meters_participants_and_only_moves_forward(desk) -> None:
    cro, _, _, (a, b) = desk
    kept = cro.store.rows("select * from uftp_mandates order by account, agr_domain")
    with pytest.raises(SignatureError, match=f"recovers to {a.address}, but meter 1001 is registered to {b.address}"):
        mandate(cro, a, Mandate("agr-a.test", 1001, JUNE, None, 5))  # A signs for B's meter
    with pytest.raises(ConflictError, match="nonce 0 is not above 0, the nonce of the mandate in force"):
        mandate(cro, b, Mandate("agr-b.test", 1001, JUNE, None, 0))  # a replay of B's mandate
    with pytest.raises(NotFoundError, match=r"no aggregator 'agr-x\.test' is registered with this CRO"):
        mandate(cro, b, Mandate("agr-x.test", 1001, JUNE, None, 1))
    with pytest.raises(NotFoundError, match="no participant is registered with meter 4242"):
        mandate(cro, b, Mandate("agr-a.test", 4242, JUNE, None, 1))
    forged = Mandate("agr-a.test", 1001, JUNE, None, 1)
    with pytest.raises(SignatureError, match="recovers to no valid key"):
        cro.record_mandate(forged, "0x" + "00" * 65)
    assert cro.store.rows("select * from uftp_mandates order by account, agr_domain") == kept
    with pytest.raises(ValueError, match=r"ends \(2026-05-31\) before it starts \(2026-06-01\)"):
        Mandate("agr-a.test", 1001, JUNE, date(2026, 5, 31), 1)


def test_the_cro_needs_its_own_key() -> None:
    secret, _, _ = keypair()
    base = {"dso": {"domain": "dso", "signing_key": secret, "time_zone": TZ}, "congestion_points": {EAN: 1}}
    with pytest.raises(ConfigurationError, match="the CRO needs its own key, not the DSO's"):
        UftpRegistry.from_dict({**base, "cro": {"domain": "cro", "signing_key": secret}})
    with pytest.raises(ConfigurationError, match="no 'cro'"):
        CommonReference(None, UftpRegistry.from_dict(base), None, area=lambda bus: frozenset())  # type: ignore[arg-type]


def test_a_message_the_node_cannot_serve_now_is_answered_rejected_not_dropped(desk, tmp_path) -> None:
    cro, keys, sent, _ = desk

    def node_down(_: object) -> object:
        raise ConnectionError("the chain node does not answer")

    down = CommonReference(
        cro.ledger, cro.registry, cro.store, area=cro.area, on_chain=node_down, send=lambda agr, m: sent.append(m)
    )
    post(down, keys, "agr-a.test", [(connection_ean(1000), date(2026, 6, 1), None)], 7)
    assert sent[-1].result == "Rejected"  # type: ignore[attr-defined]
    assert sent[-1].rejection_reason == (  # type: ignore[attr-defined]
        "Processing Error: the facilitator could not process this message now (ConnectionError); send it again later"
    )
    assert down.connections("agr-a.test", date(2026, 6, 1)) == []
    (kept,) = cro.store.rows("select result from uftp_messages where direction = 'in'")
    assert kept["result"] == sent[-1].rejection_reason  # type: ignore[attr-defined]
