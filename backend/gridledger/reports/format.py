"""Small formatting rules shared by the reports' tables."""

from __future__ import annotations

from datetime import UTC, datetime

TOKEN_UNITS = 1e6


def tokens(base_units: float) -> str:
    """Token base units as tokens with two decimals and thousands separators."""
    return f"{base_units / TOKEN_UNITS:,.2f}"


def utc(timestamp: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Unix seconds as a UTC date-time."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime(fmt)
