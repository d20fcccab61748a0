"""Hex text ↔ bytes, the one conversion between JSON, SQLite and the chain's byte values."""

from __future__ import annotations


def to_hex(value: bytes) -> str:
    """``b"\\x12\\xab"`` → ``"0x12ab"``."""
    return "0x" + bytes(value).hex()


def from_hex(text: str) -> bytes:
    """``"0x12ab"`` (or ``"12ab"``) → ``b"\\x12\\xab"``."""
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def short_hex(value: bytes) -> str:
    """The first six bytes as hex, for messages: ``0x1234567890ab…``."""
    return to_hex(value)[:14] + "…"
