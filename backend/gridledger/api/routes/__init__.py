"""One router per resource: service, participants, orders, slots, flexibility, the clock, wallets;
the dashboard's read-only overview, a slot's flows per element and the server-sent events."""

from gridledger.api.routes import clock, events, flex, flows, orders, overview, participants, service, slots, wallet

ROUTERS = (
    service.router,
    participants.router,
    orders.router,
    slots.router,
    overview.router,
    flows.router,
    flex.router,
    clock.router,
    wallet.router,
    events.router,
)

__all__ = ["ROUTERS"]
