"""One router per resource: service, participants, orders, slots, flexibility; the dashboard's
read-only overview and the server-sent events."""

from gridledger.api.routes import events, flex, orders, overview, participants, service, slots

ROUTERS = (
    service.router,
    participants.router,
    orders.router,
    slots.router,
    overview.router,
    flex.router,
    events.router,
)

__all__ = ["ROUTERS"]
