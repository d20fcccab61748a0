"""The UFTP ↔ ledger mapping: ISP numbering across daylight-saving days, prices, and the
rejections a FlexOffer gets for each thing that does not fit its request."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from shapeshifter_uftp import FlexOffer, FlexOfferOption, FlexOfferOptionISP
from xsdata.models.datatype import XmlDate, XmlDuration

from gridledger.errors import ConfigurationError
from gridledger.flex.products import BaselineMethod, Direction, FlexRequest, ServiceType
from gridledger.uftp.codec import UftpRejection
from gridledger.uftp.mapping import flex_request, isp_of, offer_from_uftp, slot_of, utilisation_price_per_kwh
from gridledger.uftp.registry import UftpRegistry

TZ = "Europe/Amsterdam"
EAN = "ean.871685900000000001"
PROVIDER = "0x" + "11" * 20


def test_isps_count_from_local_midnight_including_daylight_saving_days() -> None:
    # 2026-03-29: clocks go 02:00 → 03:00 in Amsterdam, the day has 92 ISPs.
    assert isp_of(slot_of(date(2026, 3, 29), 1, TZ), TZ) == (date(2026, 3, 29), 1)
    assert slot_of(date(2026, 3, 29), 1, TZ) == 1_774_738_800  # 2026-03-28T23:00Z
    assert isp_of(1_774_738_800 + 91 * 900, TZ) == (date(2026, 3, 29), 92)
    assert isp_of(1_774_738_800 + 92 * 900, TZ) == (date(2026, 3, 30), 1)
    # 2026-10-25: clocks go 03:00 → 02:00, 100 ISPs.
    first = slot_of(date(2026, 10, 25), 1, TZ)
    assert isp_of(first + 99 * 900, TZ) == (date(2026, 10, 25), 100)
    assert isp_of(first + 100 * 900, TZ) == (date(2026, 10, 26), 1)


def test_price_is_the_total_spread_over_the_offered_kwh() -> None:
    assert utilisation_price_per_kwh(Decimal("6.00"), power_w=8_000, slots=4) == 750_000  # 8 kWh
    assert utilisation_price_per_kwh(Decimal("1.00"), power_w=3_000, slots=1) == 1_333_333  # 0.75 kWh, floor


def request_at(start: int, direction: Direction = Direction.UP) -> FlexRequest:
    return FlexRequest(
        ServiceType.SECURE, direction, BaselineMethod.NOMINATED, 5, 8_000, start, 4, start - 3_600, 0, 10**6
    )


def offer_for(request: FlexRequest, *, powers: list[int] | None = None, options: int = 1, **fields) -> FlexOffer:
    period, first = isp_of(request.window_start, TZ)
    powers = powers or [-8_000] * 4
    option = FlexOfferOption(
        isps=[FlexOfferOptionISP(power=p, start=first + k, duration=1) for k, p in enumerate(powers)],
        option_reference="o",
        price=Decimal("6.00"),
        min_activation_factor=Decimal("1.00"),
    )
    base = {
        "isp_duration": XmlDuration("PT15M"),
        "time_zone": TZ,
        "period": XmlDate(period.year, period.month, period.day),
        "congestion_point": EAN,
        "expiration_date_time": "2030-01-01T00:00:00+00:00",
        "currency": "EUR",
        "flex_request_message_id": "6f0c1a4e-0000-4000-8000-000000000003",
        "offer_options": [option] * options,
    }
    return FlexOffer(**{**base, **fields})


def mapped(offer: FlexOffer, request: FlexRequest):
    return offer_from_uftp(
        offer, request_id=3, request=request, ean=EAN, tz=TZ, currency="EUR", provider=PROVIDER, bus=5, nonce=9
    )


START = slot_of(date(2026, 6, 1), 41, TZ)  # 10:00 local


def test_a_fitting_offer_maps_to_the_on_chain_offer() -> None:
    request = request_at(START)
    offer = mapped(offer_for(request), request)
    assert (offer.power_w, offer.availability_price_per_kwh, offer.utilisation_price_per_kwh) == (8_000, 0, 750_000)
    assert (offer.request_id, offer.window_start, offer.bus, offer.nonce) == (3, START, 5, 9)
    message = flex_request(3, request, ean=EAN, tz=TZ, recipient="agr")
    assert [(i.start, i.min_power, i.max_power) for i in message.isps] == [(41 + k, -8_000, 0) for k in range(4)]
    down = flex_request(3, request_at(START, Direction.DOWN), ean=EAN, tz=TZ, recipient="agr")
    assert {(i.min_power, i.max_power) for i in down.isps} == {(0, 8_000)}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"isp_duration": XmlDuration("PT5M")}, "ISP Duration Rejected"),
        ({"time_zone": "Europe/London"}, "TimeZone Rejected"),
        ({"congestion_point": "ean.871685900000000002"}, "Invalid Congestion Point"),
        ({"currency": "GBP"}, "Invalid Message: prices are in EUR"),
        ({"period": XmlDate(2026, 6, 2)}, "Reference Period Mismatch"),
        ({"options": 2}, "Invalid Message: GridLedger takes one OfferOption"),
        ({"powers": [-8_000, -8_000, -8_000]}, "ISPs Out Of Bounds"),
        ({"powers": [-8_000, -8_000, -8_000, -4_000]}, "Invalid Message: every ISP must offer the same negative power"),
        ({"powers": [8_000] * 4}, "Invalid Message: every ISP must offer the same negative power"),
    ],
)
def test_what_does_not_fit_is_rejected_with_uftps_reason(change: dict, reason: str) -> None:
    request = request_at(START)
    with pytest.raises(UftpRejection) as rejected:
        mapped(offer_for(request, **change), request)
    assert rejected.value.reason.startswith(reason)


def test_a_window_across_local_midnight_cannot_be_announced() -> None:
    request = request_at(slot_of(date(2026, 6, 1), 95, TZ))
    with pytest.raises(ValueError, match="spans 2 local days"):
        flex_request(1, request, ean=EAN, tz=TZ, recipient="agr")


def test_the_register_refuses_what_it_cannot_use() -> None:
    good_key = "A" * 86 + "=="  # 64 bytes
    base = {
        "dso": {"domain": "dso", "signing_key": good_key, "time_zone": TZ},
        "congestion_points": {EAN: 5},
        "aggregators": [
            {
                "domain": "agr",
                "public_key": "A" * 43 + "=",
                "endpoint": "http://x",
                "provider": PROVIDER,
                "congestion_points": [EAN],
            }
        ],
    }
    registry = UftpRegistry.from_dict(base)
    assert registry.serving(EAN)[0].domain == "agr" and registry.congestion_point_of(5) == EAN
    with pytest.raises(ConfigurationError, match=r"dso\.signing_key must be base64 of 64 bytes"):
        UftpRegistry.from_dict({**base, "dso": {**base["dso"], "signing_key": "abc"}})
    with pytest.raises(ConfigurationError, match="not an IANA time zone"):
        UftpRegistry.from_dict({**base, "dso": {**base["dso"], "time_zone": "Mars/Olympus"}})
    bad_agr = {**base["aggregators"][0], "congestion_points": ["ean.871685900000000009"]}
    with pytest.raises(ConfigurationError, match=r"names congestion points \[.ean.871685900000000009.\]"):
        UftpRegistry.from_dict({**base, "aggregators": [bad_agr]})
    with pytest.raises(ConfigurationError, match="missing or wrong"):
        UftpRegistry.from_dict({"dso": {}})
    with pytest.raises(ConfigurationError, match=r"congestion points \['feeder-7'\] are no UFTP EntityAddress"):
        UftpRegistry.from_dict({**base, "congestion_points": {"feeder-7": 5}, "aggregators": []})
