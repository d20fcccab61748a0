"""`gridledger audit` traces every UFTP-sourced offer to its aggregator's signed message, kept in
the facilitator's database: one confirmed, one whose kept message does not hash to the recorded
hash (refuted, exit status 1). Run through typer's runner on an embedded chain handed to it, as
tests/backend/test_cli.py does for slots."""

from __future__ import annotations

import json

from eth_utils.crypto import keccak
from tests.backend.uftp.conftest import EAN, TZ
from tests.backend.uftp.test_audit_uftp import record, signed_offer
from typer.testing import CliRunner

from gridledger.chain.ledger import Ledger
from gridledger.cli import app
from gridledger.encoding import short_hex, to_hex
from gridledger.uftp.store import MessageStore

runner = CliRunner()


def keep(store: MessageStore, sealed: bytes, *, message_id: str, body: bytes | None = None) -> None:
    store.add_message(
        hash_=to_hex(keccak(sealed)),
        direction="in",
        sender="agr.test",
        recipient="dso.test",
        type_="FlexOffer",
        message_id=message_id,
        conversation_id=None,
        body=sealed if body is None else body,
    )


def test_the_audit_confirms_and_refutes_uftp_offers(setup, tmp_path, monkeypatch) -> None:
    ledger, provider, bus, request, rid, secret = setup
    honest, other = signed_offer(request, secret, price="6.00"), signed_offer(request, secret, price="5.00")
    record(ledger, provider, bus, request, rid, honest)
    record(ledger, provider, bus, request, rid, other)
    database = tmp_path / "facilitator.sqlite"
    store = MessageStore(database)
    keep(store, honest, message_id="m1")
    # Kept under its recorded hash, but altered since: the price no longer says 5.00.
    altered = other.replace(b'Price="5.00', b'Price="4.00')
    assert altered != other
    keep(store, other, message_id="m2", body=altered)
    terms = tmp_path / "terms.json"
    terms.write_text(json.dumps({"congestion_points": {EAN: bus}, "time_zone": TZ, "currency": "EUR"}))
    monkeypatch.setattr(Ledger, "open", classmethod(lambda cls, settings=None, *, record=True: (ledger, False)))
    env = {"GRIDLEDGER_CHAIN": "anvil", "GRIDLEDGER_DATABASE": str(database), "COLUMNS": "300"}

    without_terms = runner.invoke(app, ["audit"], env=env)
    assert without_terms.exit_code == 1
    assert without_terms.stderr == (
        "error: 2 offers on the ledger came through UFTP: give the DSO's UFTP terms (--uftp-terms, the JSON of GET "
        "/uftp/terms) to trace them to the aggregators' signed messages\n"
    )

    result = runner.invoke(app, ["audit", "--uftp-terms", str(terms)], env=env)
    assert result.exit_code == 1, result.output
    offers = {bytes(e["args"]["sourceMessage"]): bytes(e["args"]["offerId"]) for e in _sourced(ledger)}
    lines = result.stdout.splitlines()
    assert f"UFTP offer {short_hex(offers[keccak(honest)])}  message {short_hex(keccak(honest))}  confirmed" in lines
    refuted = lines.index(f"UFTP offer {short_hex(offers[keccak(other)])}  message {short_hex(keccak(other))}  REFUTED")
    assert lines[refuted + 1] == (
        f"    - the message served as {to_hex(keccak(other))} hashes to {to_hex(keccak(altered))}"
    )
    assert lines[-1] == "1 of 2 UFTP offers traced to their signed messages"
    assert "0 of 0 slots confirmed" in lines

    # With the kept message restored, everything is confirmed and the audit exits 0.
    store.execute("update uftp_messages set body = ? where hash = ?", other, to_hex(keccak(other)))
    clean = runner.invoke(app, ["audit"], env={**env, "GRIDLEDGER_UFTP_TERMS": str(terms)})
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.splitlines()[-1] == "2 of 2 UFTP offers traced to their signed messages"


def _sourced(ledger: Ledger) -> list[dict]:  # type: ignore[type-arg]
    return list(ledger.flex.events.OfferSourced.get_logs(from_block=ledger.deployment.block))
