"""``create_app(..., uftp_config=...)``, what ``gridledger serve --uftp`` runs: the endpoint is
mounted, the operator routes need the DSO's signed request, an unreachable aggregator is
reported, and without the option nothing UFTP is served."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient
from tests.backend.uftp.conftest import EAN, TZ, keypair, window_start
from tests.conftest import free_port

from gridledger.api.app import create_app
from gridledger.api.client import ApiError, GridLedgerClient
from gridledger.config import Settings
from gridledger.flex.products import BaselineMethod, Direction, FlexRequest, ServiceType
from gridledger.service.facilitator import Facilitator
from gridledger.sim.participants import make_prosumers


def test_serve_mounts_the_uftp_endpoint_behind_the_dsos_signature(ledger, tmp_path) -> None:
    (provider,) = make_prosumers(ledger, count=1, deposit=1_000_000)
    ledger.fund_gas(ledger.roles.dso.address, 10**18)
    ledger.mint(ledger.roles.dso.address, 100_000_000)
    start = window_start(ledger)
    request = FlexRequest(
        ServiceType.SECURE, Direction.UP, BaselineMethod.NOMINATED, 2, 8_000, start, 4, start - 3_600, 0, 10**6
    )
    rid = ledger.post_flex_request(request)
    dso_secret, dso_public, _ = keypair()
    cro_secret, cro_public, _ = keypair()
    _, agr_public, _ = keypair()
    config = tmp_path / "uftp.json"
    config.write_text(
        json.dumps(
            {
                "dso": {"domain": "dso.test", "signing_key": dso_secret, "time_zone": TZ},
                "cro": {"domain": "cro.test", "signing_key": cro_secret},
                "congestion_points": {EAN: 2},
                "aggregators": [
                    {
                        "domain": "agr.test",
                        "public_key": agr_public,
                        "endpoint": f"http://127.0.0.1:{free_port()}/shapeshifter/api/v3/message",  # nobody listens
                        "provider": provider.address,
                        "congestion_points": [EAN],
                    }
                ],
            }
        )
    )
    settings = Settings(chain="embedded", database=str(tmp_path / "f.sqlite"))
    service = Facilitator(ledger, settings)
    with TestClient(create_app(service, uftp_config=str(config)), raise_server_exceptions=False) as http:
        client = GridLedgerClient(http=http)
        malformed = http.post("/shapeshifter/api/v3/message", content=b"not xml", headers={"Content-Type": "text/xml"})
        assert malformed.status_code == 400
        terms = http.get("/uftp/terms").json()
        assert terms["congestion_points"] == {EAN: 2} and terms["time_zone"] == TZ and terms["currency"] == "EUR"
        assert terms["dso_public_key"] == dso_public and "signing_key" not in json.dumps(terms)
        assert (terms["cro_domain"], terms["cro_public_key"]) == ("cro.test", cro_public)
        cro_path = terms["cro_message_path"]
        assert cro_path == "/cro/shapeshifter/api/v3/message"
        assert http.post(cro_path, content=b"not xml", headers={"Content-Type": "text/xml"}).status_code == 400
        missing = http.get("/uftp/messages/0x" + "00" * 32)
        assert missing.status_code == 404 and "no signed UFTP message" in missing.json()["detail"]

        # The participant's mandate to the aggregator, signed by the wallet client (its meter and the
        # registry's domain read from the API), kept once; the same nonce again is a conflict.
        kept = client.mandate(provider, "agr.test", valid_from=date(2026, 1, 1))  # a first: nonce 0
        assert [kept[k] for k in ("account", "meter_id", "valid_until", "nonce")] == [provider.address, 1000, None, 0]
        with pytest.raises(ApiError) as again:
            client.mandate(provider, "agr.test", valid_from=date(2026, 1, 1), nonce=0)
        assert again.value.status == 409 and "nonce 0 is not above 0" in again.value.body["detail"]
        # A day given as a date-time or a timestamp is not what anyone signed: refused, not converted.
        for day in ("2026-01-01T00:00:00Z", 1767225600):
            body = {"aggregator": "agr.test", "meter_id": 1000, "valid_from": day, "nonce": 5}
            converted = http.post("/cro/mandates", json=body | {"signature": "0x" + "1" * 130})
            assert converted.status_code == 422 and "valid_from" in converted.text
        # Withdrawn from April: the client takes the next nonce from the mandate in force.
        ended = client.mandate(provider, "agr.test", valid_from=date(2026, 1, 1), valid_until=date(2026, 3, 31))
        assert (ended["valid_until"], ended["nonce"]) == ("2026-03-31", 1)
        (in_force,) = http.get(f"/cro/mandates/{provider.address.lower()}").json()
        assert {k: in_force[k] for k in ("account", "aggregator", "valid_until", "nonce")} == {
            "account": provider.address,
            "aggregator": "agr.test",
            "valid_until": "2026-03-31",
            "nonce": 1,
        }
        assert in_force["signature"] == ended["signature"]
        assert http.get(f"/cro/mandates/{ledger.roles.dso.address}").json() == []
        assert http.get("/cro/mandates/alice").status_code == 422

        unsigned = http.post(f"/uftp/requests/{rid}/announce")
        assert unsigned.status_code == 401
        as_prosumer = http.post(
            f"/uftp/requests/{rid}/announce", headers=_signed(provider, f"/uftp/requests/{rid}/announce")
        )
        assert as_prosumer.status_code == 403

        result = client.request("POST", f"/uftp/requests/{rid}/announce", signer=ledger.roles.dso)
        assert result["request_id"] == rid and result["sent"] == []
        assert list(result["failed"]) == ["agr.test"] and "ConnectionError" in result["failed"]["agr.test"]
        unknown = http.post(
            "/uftp/requests/99/announce", headers=_signed(ledger.roles.dso, "/uftp/requests/99/announce")
        )
        assert unknown.status_code == 404 and "no flexibility request 99" in unknown.json()["detail"]

    with TestClient(create_app(Facilitator(ledger, settings)), raise_server_exceptions=False) as http:
        assert http.post("/shapeshifter/api/v3/message", content=b"<x/>").status_code == 404
        assert http.post("/cro/shapeshifter/api/v3/message", content=b"<x/>").status_code == 404
        assert http.post("/cro/mandates", json={}).status_code == 404


def _signed(account, path: str) -> dict[str, str]:
    from gridledger.wallet.requests import sign_request

    return sign_request(account, "POST", path, b"")
