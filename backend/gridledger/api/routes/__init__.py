"""One router per resource: service, participants, orders, slots, flexibility."""

from gridledger.api.routes import flex, orders, participants, service, slots

ROUTERS = (service.router, participants.router, orders.router, slots.router, flex.router)

__all__ = ["ROUTERS"]
