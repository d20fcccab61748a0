"""A wallet's money: deposits and withdrawals it signed and the facilitator relays (no
transaction, no gas and no node of the wallet's own), its balances and nonces, its payments."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from fastapi import APIRouter

from gridledger.api.deps import AccountPath, FacilitatorDep, mined
from gridledger.api.errors import refusals
from gridledger.api.schemas import DepositCreate, PaymentPublic, WalletMoved, WalletPublic, WithdrawalCreate

router = APIRouter(prefix="/wallet", tags=["wallet"], responses=refusals(413, 422, 503))


@router.get("/{account}", response_model=WalletPublic)
def wallet(service: FacilitatorDep, account: AccountPath) -> dict[str, Any]:
    """Balances, and the nonces and domain a deposit permit or a withdrawal is signed with."""
    return service.funds.wallet(account)


@router.get("/{account}/payments", response_model=list[PaymentPublic])
def payments(service: FacilitatorDep, account: AccountPath) -> list[dict[str, Any]]:
    """Every movement of the account's market balance: deposits, withdrawals, purchases, sales, charges."""
    return service.funds.payments(account)


@router.post("/deposits", status_code=201, response_model=WalletMoved, responses=refusals(401, 409))
async def deposit(service: FacilitatorDep, body: DepositCreate) -> dict[str, Any]:
    """Relays the owner's permit: ``amount`` moves from its wallet into its market balance."""
    owner = str(to_checksum_address(body.owner))
    r, vs = body.parts()
    tx = await mined(service.funds.deposit(owner, amount=body.amount, deadline=body.deadline, r=r, vs=vs))
    return service.funds.wallet(owner) | {"amount": body.amount, "tx_hash": tx}


@router.post("/withdrawals", status_code=201, response_model=WalletMoved, responses=refusals(401, 409))
async def withdraw(service: FacilitatorDep, body: WithdrawalCreate) -> dict[str, Any]:
    """Relays the owner's signed withdrawal: ``amount`` moves from its market balance to its wallet."""
    owner = str(to_checksum_address(body.owner))
    r, vs = body.parts()
    tx = await mined(
        service.funds.withdraw(owner, amount=body.amount, nonce=body.nonce, deadline=body.deadline, r=r, vs=vs)
    )
    return service.funds.wallet(owner) | {"amount": body.amount, "tx_hash": tx}
