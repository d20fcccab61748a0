"""UFTP (USEF's Shapeshifter protocol): the DSO side of GridLedger's flexibility market for
aggregators that speak UFTP, on top of USEF's own ``shapeshifter-uftp`` message classes, XML and
Ed25519 sealing (its FastAPI service class is not used: it does not start under FastAPI 0.165).

- ``registry``: who may speak (domain + role → public key, endpoint, provider account, congestion points)
- ``codec``: open a SignedMessage (verify, parse) and seal outgoing messages
- ``mapping``: UFTP messages ↔ the on-chain request, offer, order and settlement records
- ``store``: every signed message kept, by the keccak-256 of its sealed body
- ``gateway``: the facilitator's UFTP desk (incoming messages, outgoing FlexRequest/Order/Settlement)
- ``router``: the HTTP endpoint (POST /shapeshifter/api/v3/message, GET /uftp/messages/{hash})
"""
