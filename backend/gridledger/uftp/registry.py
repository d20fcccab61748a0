"""The UFTP participant register: UFTP's participant lookup (sender domain + role → public key
and endpoint) from a JSON file instead of DNS, plus what GridLedger binds to each aggregator: its
provider account on the ledger and the congestion points it serves.

File shape (``GRIDLEDGER_UFTP_CONFIG``)::

    {"dso": {"domain": "dso.example", "signing_key": "<base64 64-byte Ed25519 secret key>",
             "time_zone": "Europe/Amsterdam", "currency": "EUR"},
     "congestion_points": {"ean.871685900000000001": 12},
     "aggregators": [{"domain": "agr.example", "public_key": "<base64 32 bytes>",
                      "endpoint": "https://agr.example/shapeshifter/api/v3/message",
                      "provider": "0x…", "congestion_points": ["ean.871685900000000001"]}]}
"""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eth_utils.address import is_address, to_checksum_address

from gridledger.errors import ConfigurationError


@dataclass(frozen=True)
class Aggregator:
    domain: str
    public_key: str  # base64 of the 32-byte Ed25519 verify key, as UFTP publishes it
    endpoint: str
    provider: str  # checksummed address of the provider account its offers are made for
    congestion_points: tuple[str, ...]

    @property
    def public_key_bytes(self) -> bytes:
        return b64decode(self.public_key)


@dataclass(frozen=True)
class Dso:
    domain: str
    signing_key: str  # base64 of the 64-byte Ed25519 secret key (seed + public key), as the library takes it
    time_zone: str
    currency: str

    @property
    def public_key(self) -> str:
        """The verify key aggregators check the DSO's messages with (the secret key's second half)."""
        return b64encode(b64decode(self.signing_key)[32:]).decode()


@dataclass(frozen=True)
class UftpRegistry:
    dso: Dso
    congestion_points: dict[str, int]  # EAN → bus of the published network model
    aggregators: tuple[Aggregator, ...]

    @classmethod
    def load(cls, path: str | Path) -> UftpRegistry:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigurationError(f"UFTP config {path}: cannot be read as JSON ({exc})") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "UFTP config") -> UftpRegistry:
        try:
            d = raw["dso"]
            dso = Dso(d["domain"], d["signing_key"], d.get("time_zone", "Europe/Amsterdam"), d.get("currency", "EUR"))
            points = {str(ean): int(bus) for ean, bus in raw["congestion_points"].items()}
            aggregators = tuple(
                Aggregator(a["domain"], a["public_key"], a["endpoint"], a["provider"], tuple(a["congestion_points"]))
                for a in raw.get("aggregators", [])
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(
                f"{source}: needs dso.domain, dso.signing_key, congestion_points {{EAN: bus}} and aggregators "
                f"[{{domain, public_key, endpoint, provider, congestion_points}}]; missing or wrong: {exc}"
            ) from None
        _check_key(source, "dso.signing_key", dso.signing_key, 64)
        try:
            ZoneInfo(dso.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"{source}: dso.time_zone {dso.time_zone!r} is not an IANA time zone") from None
        checked = []
        for a in aggregators:
            _check_key(source, f"aggregator {a.domain} public_key", a.public_key, 32)
            if not is_address(a.provider):
                raise ConfigurationError(f"{source}: aggregator {a.domain}: provider {a.provider!r} is not an address")
            unknown = [p for p in a.congestion_points if p not in points]
            if unknown:
                raise ConfigurationError(
                    f"{source}: aggregator {a.domain} names congestion points {unknown} that are not in "
                    f"congestion_points ({sorted(points)})"
                )
            checked.append(
                Aggregator(a.domain, a.public_key, a.endpoint, to_checksum_address(a.provider), a.congestion_points)
            )
        if len({a.domain for a in checked}) != len(checked):
            raise ConfigurationError(f"{source}: an aggregator domain is listed twice")
        return cls(dso, points, tuple(checked))

    def aggregator(self, domain: str) -> Aggregator | None:
        return next((a for a in self.aggregators if a.domain == domain), None)

    def congestion_point_of(self, bus: int) -> str | None:
        """The EAN of the congestion point at ``bus`` (the first listed if several name it)."""
        return next((ean for ean, b in self.congestion_points.items() if b == bus), None)

    def serving(self, ean: str) -> list[Aggregator]:
        return [a for a in self.aggregators if ean in a.congestion_points]


def _check_key(source: str, what: str, value: str, length: int) -> None:
    try:
        ok = len(b64decode(value, validate=True)) == length
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ConfigurationError(f"{source}: {what} must be base64 of {length} bytes")
