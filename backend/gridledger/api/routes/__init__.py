"""One router per resource: service, participants, orders, slots, flexibility, the clock, wallets."""

from gridledger.api.routes import clock, flex, orders, participants, service, slots, wallet

ROUTERS = (service.router, participants.router, orders.router, slots.router, flex.router, clock.router, wallet.router)

__all__ = ["ROUTERS"]
