"""GridLedger: a local energy market on an Ethereum ledger.

The data flow: orders (``market.orders``) → clearing (``market.clearing``) → ledger
(``chain``) → metering and settlement (``settlement``) → reports (``reports``).
"""

__version__ = "0.1.0"
