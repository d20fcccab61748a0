"""An aggregator built on USEF's shapeshifter-uftp, unmodified: its ShapeshifterAgrService
receives the DSO's messages and its ShapeshifterAgrDsoClient answers. Runs in its own venv (the
library's service needs FastAPI 0.135–0.139; GridLedger's venv has 0.165), started by
tests/backend/uftp/test_interop.py as ``python aggregator_agent.py CONFIG.json``.

It learns its congestion points from the CRO (the AGRPortfolioQueryResponse to the query the test
sends with the library's ShapeshifterAgrCroClient and this aggregator's key), rejects a FlexRequest
for any other congestion point, and offers the full requested power in every requested ISP at
``offer_price`` (EUR); it accepts every order and settlement. Every message it receives is
appended to ``log`` as one JSON line, in one write (the portfolio answer after it is learnt).
"""

import json
import os
import sys
import threading
from decimal import Decimal

from shapeshifter_uftp import (
    AcceptedRejected,
    FlexOffer,
    FlexOfferOption,
    FlexOfferOptionISP,
    FlexOrderResponse,
    FlexOrderSettlementStatus,
    FlexRequestResponse,
    FlexSettlementResponse,
    ShapeshifterAgrService,
)
from shapeshifter_uftp.transport import to_xml
from shapeshifter_uftp.uftp.enums import AcceptedDisputed

with open(sys.argv[1]) as f:
    config = json.load(f)
lock = threading.Lock()
congestion_points = set()  # from the CRO's AGRPortfolioQueryResponse


def log(message):
    # One write(2) of a whole line to an O_APPEND file: a reader never sees half a line.
    line = (json.dumps({"type": type(message).__name__, "xml": to_xml(message)}) + "\n").encode()
    with lock:
        fd = os.open(config["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


class Aggregator(ShapeshifterAgrService):
    def process_flex_request(self, message):
        log(message)
        client = self.dso_client(message.sender_domain)
        known = message.congestion_point in congestion_points
        why = f"Invalid Congestion Point: not in my portfolio {sorted(congestion_points)}"
        client.send_flex_request_response(
            FlexRequestResponse(
                flex_request_message_id=message.message_id,
                conversation_id=message.conversation_id,
                result=AcceptedRejected.ACCEPTED if known else AcceptedRejected.REJECTED,
                rejection_reason=None if known else why,
            )
        )
        if not known:
            return
        isps = [
            FlexOfferOptionISP(
                power=i.min_power if i.min_power < 0 else i.max_power, start=i.start, duration=i.duration
            )
            for i in message.isps
        ]
        client.send_flex_offer(
            FlexOffer(
                conversation_id=message.conversation_id,
                isp_duration=message.isp_duration,
                time_zone=message.time_zone,
                period=message.period,
                congestion_point=message.congestion_point,
                expiration_date_time=message.expiration_date_time,
                flex_request_message_id=message.message_id,
                currency="EUR",
                offer_options=[
                    FlexOfferOption(
                        isps=isps,
                        option_reference="option-1",
                        price=Decimal(config["offer_price"]),
                        min_activation_factor=Decimal("1.00"),
                    )
                ],
            )
        )

    def process_flex_order(self, message):
        log(message)
        self.dso_client(message.sender_domain).send_flex_order_response(
            FlexOrderResponse(
                flex_order_message_id=message.message_id,
                conversation_id=message.conversation_id,
                result=AcceptedRejected.ACCEPTED,
            )
        )

    def process_flex_settlement(self, message):
        log(message)
        self.dso_client(message.sender_domain).send_flex_settlement_response(
            FlexSettlementResponse(
                flex_settlement_message_id=message.message_id,
                conversation_id=message.conversation_id,
                result=AcceptedRejected.ACCEPTED,
                flex_order_settlement_statuses=[
                    FlexOrderSettlementStatus(order_reference=s.order_reference, disposition=AcceptedDisputed.ACCEPTED)
                    for s in message.flex_order_settlements
                ],
            )
        )

    def process_agr_portfolio_query_response(self, message):
        if message.result == AcceptedRejected.ACCEPTED:
            for view in message.dso_views:
                for portfolio in view.dso_portfolios:
                    congestion_points.update(p.entity_address for p in portfolio.congestion_points)
        log(message)


# Responses to what it sent and messages it does not act on: kept in the log for the test to read.
for _name in (
    "process_flex_offer_response",
    "process_flex_offer_revocation_response",
    "process_metering_response",
    "process_d_prognosis_response",
    "process_flex_reservation_update",
    "process_agr_portfolio_update_response",
):
    setattr(Aggregator, _name, lambda self, message: log(message))
Aggregator.__abstractmethods__ = frozenset()  # every abstract process_* method is set just above

service = Aggregator(
    sender_domain=config["domain"],
    signing_key=config["signing_key"],
    key_lookup_function=lambda domain, role: config["cro_public_key" if role == "CRO" else "dso_public_key"],
    endpoint_lookup_function=lambda domain, role: config["cro_endpoint" if role == "CRO" else "dso_endpoint"],
    host="127.0.0.1",
    port=config["port"],
)
service.run()
