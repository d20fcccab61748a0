"""An aggregator built on USEF's shapeshifter-uftp, unmodified: its ShapeshifterAgrService
receives the DSO's messages and its ShapeshifterAgrDsoClient answers. Runs in its own venv (the
library's service needs FastAPI 0.135–0.139; GridLedger's venv has 0.165), started by
tests/backend/uftp/test_interop.py as ``python aggregator_agent.py CONFIG.json``.

It offers the full requested power in every requested ISP at ``offer_price`` (EUR) and accepts
every order and settlement. Every message it receives is appended to ``log`` as a JSON line.
"""

import json
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


def log(message):
    with lock, open(config["log"], "a") as f:
        f.write(json.dumps({"type": type(message).__name__, "xml": to_xml(message)}) + "\n")


class Aggregator(ShapeshifterAgrService):
    def process_flex_request(self, message):
        log(message)
        client = self.dso_client(message.sender_domain)
        client.send_flex_request_response(
            FlexRequestResponse(
                flex_request_message_id=message.message_id,
                conversation_id=message.conversation_id,
                result=AcceptedRejected.ACCEPTED,
            )
        )
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


# Responses to what it sent and messages it does not act on: kept in the log for the test to read.
for _name in (
    "process_flex_offer_response",
    "process_flex_offer_revocation_response",
    "process_metering_response",
    "process_d_prognosis_response",
    "process_flex_reservation_update",
    "process_agr_portfolio_query_response",
    "process_agr_portfolio_update_response",
):
    setattr(Aggregator, _name, lambda self, message: log(message))
Aggregator.__abstractmethods__ = frozenset()  # every abstract process_* method is set just above

service = Aggregator(
    sender_domain=config["domain"],
    signing_key=config["signing_key"],
    key_lookup_function=lambda domain, role: config["dso_public_key"],
    endpoint_lookup_function=lambda domain, role: config["dso_endpoint"],
    host="127.0.0.1",
    port=config["port"],
)
service.run()
