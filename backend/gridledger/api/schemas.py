"""Request bodies of the facilitator's API, with the ranges the contracts allow."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridledger.units import SLOT_SECONDS, UINT32_MAX, UINT40_MAX, UINT64_MAX

OfferId = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="EIP-712 hash of the offer")]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="0x-prefixed Ethereum address")]
Signature = Annotated[
    str,
    Field(
        pattern=r"^0x([0-9a-fA-F]{128}|[0-9a-fA-F]{130})$",
        description="EIP-712 signature: 64 bytes (EIP-2098 r ‖ vs) or 65 bytes (r ‖ s ‖ v), hex",
    ),
]
OrderHash = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="EIP-712 hash of the order")]
SlotStart = Annotated[
    int,
    Field(ge=SLOT_SECONDS, le=UINT40_MAX, multiple_of=SLOT_SECONDS, description="unix start of a 15-minute slot"),
]
INT64_MAX = 2**63 - 1


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class OrderBody(Body):
    prosumer: Address
    side: Literal["buy", "sell"]
    delivery_start: SlotStart
    energy_wh: Annotated[int, Field(ge=1, le=UINT32_MAX)]
    price_per_kwh: Annotated[int, Field(ge=0, le=UINT64_MAX, description="token base units per kWh")]
    nonce: Annotated[int, Field(ge=0, le=UINT64_MAX)]
    expiry: Annotated[int, Field(ge=0, le=UINT40_MAX, description="unix time after which the order is void")]
    signature: Signature


class CancellationBody(Body):
    signature: Signature


class RegistrationBody(Body):
    account: Address
    meter_id: Annotated[int, Field(ge=1, le=UINT64_MAX)]
    bus: Annotated[int, Field(ge=0, le=UINT32_MAX, description="bus of the network model")]
    capacity_w: Annotated[int, Field(ge=4, le=UINT32_MAX, description="connection capacity in W")]


class FlexRequestBody(Body):
    service: Literal["sustain", "secure", "dynamic", "restore"]
    direction: Literal["up", "down"]
    baseline: Literal["historical", "nominated", "meter_before_after"]
    congestion_bus: Annotated[int, Field(ge=0, le=UINT32_MAX, description="bus of the network model")]
    power_w: Annotated[int, Field(ge=1, le=UINT32_MAX)]
    window_start: SlotStart
    window_slots: Annotated[int, Field(ge=1, le=96)]
    bid_deadline: Annotated[int, Field(ge=0, le=UINT40_MAX)]
    max_availability_price_per_kwh: Annotated[int, Field(ge=0, le=UINT64_MAX, description="per kW per hour")]
    max_utilisation_price_per_kwh: Annotated[int, Field(ge=0, le=UINT64_MAX)]
    min_performance_bps: Annotated[int, Field(ge=1, le=10_000)] = 5_000


class FlexOfferBody(Body):
    provider: Address
    window_start: SlotStart
    power_w: Annotated[int, Field(ge=1, le=UINT32_MAX)]
    availability_price_per_kwh: Annotated[int, Field(ge=0, le=UINT64_MAX)]
    utilisation_price_per_kwh: Annotated[int, Field(ge=0, le=UINT64_MAX)]
    bus: Annotated[int, Field(ge=0, le=UINT32_MAX, description="the asset's connection point")]
    nonce: Annotated[int, Field(ge=0, le=UINT64_MAX)]
    signature: Signature


class ActivationBody(Body):
    slot: SlotStart
    power_w: Annotated[int, Field(ge=1, le=UINT32_MAX)]


class MeasurementBody(Body):
    slot: SlotStart
    baseline_wh: Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
    actual_wh: Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]


class MeterReading(Body):
    account: Address
    net_wh: Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX, description="Wh taken from the grid (fed in < 0)")]


class MeterReadingsBody(Body):
    readings: Annotated[list[MeterReading], Field(min_length=1, max_length=1_000)]
