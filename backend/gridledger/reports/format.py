"""Small formatting rules shared by the reports' tables."""

from __future__ import annotations

from datetime import UTC, datetime

from gridledger.units import tokens as as_tokens


def tokens(base_units: float) -> str:
    """Token base units as tokens with two decimals and thousands separators."""
    return f"{as_tokens(base_units):,.2f}"


def utc(timestamp: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Unix seconds as a UTC date-time."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime(fmt)
