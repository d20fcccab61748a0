"""Opening and sealing UFTP messages with the library's own XML and crypto.

A UFTP message travels as a ``SignedMessage`` envelope (sender domain, sender role, Body) whose
Body is the libsodium ``crypto_sign`` seal of the payload's XML: the 64-byte Ed25519 signature
followed by the XML. Transport failures answer an HTTP status as the library's service does
(400 schema, 401 signature or unknown sender); functional ones a Rejected response message.
"""

from __future__ import annotations

import logging
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from eth_utils.crypto import keccak
from shapeshifter_uftp import transport
from shapeshifter_uftp.exceptions import InvalidSignatureException, SchemaException
from shapeshifter_uftp.uftp import PayloadMessage, SignedMessage, UsefRole
from xsdata.exceptions import ParserError

from gridledger.encoding import to_hex
from gridledger.errors import RequestError
from gridledger.uftp.registry import Aggregator, UftpRegistry
from gridledger.uftp.store import MessageStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class UftpTransportError(RequestError):
    """A message refused before it is read: ``status`` is the HTTP status UFTP answers with."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class UftpRejection(Exception):
    """A functional refusal: answered with the request's response message, Result=Rejected and
    ``reason`` (one of UFTP's rejection reasons, followed by what GridLedger found)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Opened:
    """An incoming message whose seal verified: the envelope, the payload and the sealed bytes."""

    sender_domain: str
    sender_role: str
    payload: PayloadMessage
    sealed: bytes

    @property
    def hash(self) -> bytes:
        return source_hash(self.sealed)


def source_hash(sealed: bytes) -> bytes:
    """What the ledger records for a UFTP message: the keccak-256 of its sealed Body."""
    return keccak(sealed)


def open_signed(body: bytes, registry: UftpRegistry) -> Opened:
    """Parses the envelope, finds the sender's key in the register and verifies the seal."""
    try:
        envelope = transport.from_xml(body)
    except (ParserError, ValueError, TypeError) as exc:
        raise UftpTransportError(f"not a UFTP SignedMessage: {exc}", status=400) from None
    if not isinstance(envelope, SignedMessage) or not envelope.body:
        raise UftpTransportError(
            f"expected a SignedMessage envelope with a Body, got {type(envelope).__name__}", status=400
        )
    role = envelope.sender_role.value if isinstance(envelope.sender_role, UsefRole) else str(envelope.sender_role)
    aggregator = registry.aggregator(envelope.sender_domain) if role == UsefRole.AGR.value else None
    if aggregator is None:
        raise UftpTransportError(
            f"unknown sender {envelope.sender_domain} ({role}): only aggregators (AGR) listed in the DSO's UFTP "
            "register may send here",
            status=401,
        )
    try:
        payload = transport.unseal_message(envelope.body, aggregator.public_key)
    except InvalidSignatureException:
        raise UftpTransportError(
            f"the Body is not sealed with {envelope.sender_domain}'s registered key "
            "(libsodium crypto_sign over the payload XML)",
            status=401,
        ) from None
    except SchemaException as exc:
        raise UftpTransportError(f"the sealed payload is not a UFTP message: {exc}", status=400) from None
    if not isinstance(payload, PayloadMessage):
        raise UftpTransportError(f"the sealed payload is a {type(payload).__name__}, not a UFTP message", status=400)
    return Opened(envelope.sender_domain, role, payload, bytes(envelope.body))


def seal(payload: PayloadMessage, signing_key: str, *, sender_domain: str) -> tuple[bytes, bytes]:
    """The sealed Body and the SignedMessage XML of ``payload``, from the DSO."""
    sealed = bytes(transport.seal_message(payload, signing_key))
    envelope = SignedMessage(sender_domain=sender_domain, sender_role=UsefRole.DSO, body=sealed)
    return sealed, transport.to_xml(envelope).encode()


def verify_sealed(sealed: bytes, public_key: bytes) -> PayloadMessage:
    """The payload of ``sealed`` if its Ed25519 seal verifies with ``public_key`` (raw 32 bytes)."""
    payload = transport.unseal_message(sealed, b64encode(public_key).decode())
    if not isinstance(payload, PayloadMessage):
        raise SchemaException(f"sealed payload is a {type(payload).__name__}")
    return payload


@dataclass(frozen=True)
class Incoming:
    """A verified message, kept in the archive; ``fresh`` is False when the same sealed message
    came before (a replay: refused, and the first one's result stands)."""

    opened: Opened
    aggregator: Aggregator
    fresh: bool

    def check_envelope(self, recipient_domain: str, recipient: str) -> None:
        """The functional checks of every incoming message (UFTP's Invalid Sender, Unknown
        Recipient and Duplicate Identifier), as ``UftpRejection``."""
        payload = self.opened.payload
        if payload.sender_domain != self.opened.sender_domain:
            raise UftpRejection(
                f"Invalid Sender: the envelope says {self.opened.sender_domain}, the message {payload.sender_domain}"
            )
        if payload.recipient_domain != recipient_domain:
            raise UftpRejection(f"Unknown Recipient: this is {recipient} {recipient_domain}")
        if not self.fresh:
            raise UftpRejection(f"Duplicate Identifier: MessageID {payload.message_id} was used before")

    def processed(self, process: Callable[[], T]) -> T:
        """``process()``; any failure other than a functional refusal (a node that does not answer,
        a bug) becomes one too, logged, so that the aggregator still gets its response."""
        try:
            return process()
        except UftpRejection:
            raise
        except Exception as exc:
            log.exception("processing UFTP %s failed", type(self.opened.payload).__name__)
            raise UftpRejection(
                f"Processing Error: the facilitator could not process this message now ({type(exc).__name__}); "
                "send it again later"
            ) from exc


def run_here(fn: Callable[[], T]) -> T:
    """The default ``on_chain`` of the UFTP desks: run at once (the service passes its chain thread's)."""
    return fn()


def keep_incoming(body: bytes, registry: UftpRegistry, store: MessageStore) -> Incoming:
    """Verifies one SignedMessage (``open_signed``: a ``UftpTransportError`` keeps nothing) and
    keeps it in the message archive."""
    opened = open_signed(body, registry)
    payload = opened.payload
    aggregator = registry.aggregator(opened.sender_domain)
    assert aggregator is not None  # open_signed found its key
    fresh = store.add_message(
        hash_=to_hex(opened.hash),
        direction="in",
        sender=opened.sender_domain,
        recipient=str(payload.recipient_domain),
        type_=type(payload).__name__,
        message_id=str(payload.message_id),
        conversation_id=payload.conversation_id,
        body=opened.sealed,
    )
    return Incoming(opened, aggregator, fresh)
