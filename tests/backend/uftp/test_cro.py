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

from gridledger.errors import ConfigurationError
from gridledger.sim.participants import make_prosumers
from gridledger.uftp.cro import CommonReference, connection_ean, meter_of
from gridledger.uftp.registry import UftpRegistry
from gridledger.uftp.store import MessageStore

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
    return cro, keys, sent, (a, b)


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
