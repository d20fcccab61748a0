"""The UFTP participant register: UFTP's participant lookup (sender domain + role → public key
and endpoint) from a JSON file instead of DNS, plus what GridLedger binds to each aggregator: its
provider account on the ledger and, optionally, congestion points it serves whatever its
portfolio (the CRO's portfolio, ``uftp/cro.py``, adds those where it announced connections).

File shape (``GRIDLEDGER_UFTP_CONFIG``)::

    {"dso": {"domain": "dso.example", "signing_key": "<base64 64-byte Ed25519 secret key>",
             "time_zone": "Europe/Amsterdam", "currency": "EUR"},
     "cro": {"domain": "cro.example", "signing_key": "<base64 64-byte Ed25519 secret key>"},
     "congestion_points": {"ean.871685900000000001": 12},
     "aggregators": [{"domain": "agr.example", "public_key": "<base64 32 bytes>",
                      "endpoint": "https://agr.example/shapeshifter/api/v3/message",
                      "provider": "0x…", "congestion_points": ["ean.871685900000000001"]}]}

``cro`` is optional: without it GridLedger is no Common Reference Operator and an aggregator
serves only the congestion points listed for it here.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode, b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eth_utils.address import is_address, to_checksum_address

from gridledger.errors import ConfigurationError

# UFTP's EntityAddress, as its XML schema has it.
ENTITY_ADDRESS = re.compile(r"ean\.[0-9]{12,34}|ea1\.[0-9]{4}-[0-9]{2}\..{1,244}:.{1,244}")


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
class Cro:
    """GridLedger as the Common Reference Operator of its grid: its own domain and key, since UFTP
    looks keys up by domain and role and the CRO's answers are sealed with the CRO's key."""

    domain: str
    signing_key: str  # base64 of the 64-byte Ed25519 secret key

    @property
    def public_key(self) -> str:
        return b64encode(b64decode(self.signing_key)[32:]).decode()


@dataclass(frozen=True)
class UftpRegistry:
    dso: Dso
    congestion_points: dict[str, int]  # EAN → bus of the published network model
    aggregators: tuple[Aggregator, ...]
    cro: Cro | None = None

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
                Aggregator(
                    a["domain"], a["public_key"], a["endpoint"], a["provider"], tuple(a.get("congestion_points", ()))
                )
                for a in raw.get("aggregators", [])
            )
            cro = Cro(raw["cro"]["domain"], raw["cro"]["signing_key"]) if "cro" in raw else None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(
                f"{source}: needs dso.domain, dso.signing_key, congestion_points {{EAN: bus}} and aggregators "
                f"[{{domain, public_key, endpoint, provider, congestion_points}}] (and cro.domain, cro.signing_key "
                f"if cro is given); missing or wrong: {exc}"
            ) from None
        _check_key(source, "dso.signing_key", dso.signing_key, 64)
        odd = [ean for ean in points if not ENTITY_ADDRESS.fullmatch(ean)]
        if odd:
            raise ConfigurationError(
                f"{source}: congestion points {odd} are no UFTP EntityAddress (ean. + 12 to 34 digits, or ea1.…)"
            )
        if cro is not None:
            _check_key(source, "cro.signing_key", cro.signing_key, 64)
            if cro.signing_key == dso.signing_key:
                raise ConfigurationError(f"{source}: the CRO needs its own key, not the DSO's (UFTP keys are per role)")
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
        return cls(dso, points, tuple(checked), cro)

    def aggregator(self, domain: str) -> Aggregator | None:
        return next((a for a in self.aggregators if a.domain == domain), None)

    def congestion_point_of(self, bus: int) -> str | None:
        """The EAN of the congestion point at ``bus`` (the first listed if several name it)."""
        return next((ean for ean, b in self.congestion_points.items() if b == bus), None)

    def serving(self, ean: str) -> list[Aggregator]:
        return [a for a in self.aggregators if ean in a.congestion_points]


@dataclass(frozen=True)
class PublicTerms:
    """What an auditor needs of the DSO's UFTP terms: EAN → bus, time zone and currency."""

    congestion_points: dict[str, int]
    time_zone: str
    currency: str

    @classmethod
    def load(cls, path: str | Path) -> PublicTerms:
        """From the JSON ``GET /uftp/terms`` serves, or from the register itself."""
        try:
            raw = json.loads(Path(path).read_text())
            terms = raw.get("dso", raw)  # the register keeps them under "dso"
            return cls(
                {str(ean): int(bus) for ean, bus in raw["congestion_points"].items()},
                str(terms["time_zone"]),
                str(terms["currency"]),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(
                f"UFTP terms {path}: need the JSON of GET /uftp/terms (congestion_points, time_zone, currency) or the "
                f"UFTP register; cannot read them ({type(exc).__name__}: {exc})"
            ) from None


def _check_key(source: str, what: str, value: str, length: int) -> None:
    try:
        ok = len(b64decode(value, validate=True)) == length
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ConfigurationError(f"{source}: {what} must be base64 of {length} bytes")
