"""A wallet's money in and out of the market, signed by the wallet and relayed by the facilitator
(whose key pays the gas): deposits as EIP-2612 permits, withdrawals as EIP-712 ``Withdrawal``s
(``wallet/funds.py`` signs both). The contracts check signer, deadline and nonce; the preflight
refuses a bad one (expired, replayed, wrong signer, too little balance) before anything is sent."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from gridledger.service.context import ServiceContext
from gridledger.wallet.funds import token_domain

_LOW_255 = (1 << 255) - 1


class FundsDesk:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.ledger = ctx.ledger

    def deposit(self, owner: str, *, amount: int, deadline: int, r: bytes, vs: bytes) -> Future[str]:
        packed = int.from_bytes(vs, "big")
        v, s = 27 + (packed >> 255), (packed & _LOW_255).to_bytes(32, "big")
        call = self.ledger.market.functions.depositWithPermit(owner, amount, deadline, v, r, s)
        return self._relay(call, f"deposit of {amount} by permit of {owner}")

    def withdraw(self, owner: str, *, amount: int, nonce: int, deadline: int, r: bytes, vs: bytes) -> Future[str]:
        call = self.ledger.market.functions.withdrawBySig(owner, amount, nonce, deadline, r, vs)
        return self._relay(call, f"signed withdrawal of {amount} by {owner}")

    def _relay(self, call: Any, action: str) -> Future[str]:
        def act() -> str:
            receipt = self.ledger.tx.send(self.ledger.roles.facilitator, call, action=action)
            self.ctx.indexer.sync()
            return str(receipt["transactionHash"].to_0x_hex())

        return self.ctx.worker.call(act)

    def wallet(self, account: str) -> dict[str, Any]:
        """What a wallet needs to sign a deposit or a withdrawal: balances, nonces, the token's domain."""

        def read() -> dict[str, Any]:
            ledger = self.ledger
            available, locked = ledger.account_of(account)
            return {
                "account": account,
                "token_balance": ledger.token_balance(account),
                "market_balance": {"available": available, "locked": locked},
                "permit_nonce": int(ledger.token.functions.nonces(account).call()),
                "withdrawal_nonce": int(ledger.market.functions.withdrawalNonce(account).call()),
                "token_eip712_domain": token_domain(self.ctx.chain_id, ledger.token.address),
                "market": ledger.market.address,
            }

        return self.ctx.on_chain(read)

    def payments(self, account: str) -> list[dict[str, Any]]:
        """Every movement of the account's market balance the index holds, oldest first."""
        return self.ctx.rows(
            "select block, delivery_start, kind, amount, order_hash from payments where account = ? "
            "order by block, log_index",
            account,
        )
