"""Settings, read once from the environment (``GRIDLEDGER_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridledger.units import DAY_SECONDS

# Hardhat's and anvil's well-known development mnemonic. The embedded chain is created from it
# too, so the same role accounts exist on every local chain. Never use it on a public network.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


class Settings(BaseSettings):
    """Where GridLedger runs and with which keys."""

    model_config = SettingsConfigDict(env_prefix="GRIDLEDGER_", extra="ignore")

    chain: str = Field(
        default="embedded",
        description="embedded | hardhat | anvil | an http(s) JSON-RPC URL",
    )
    mnemonic: str = Field(default=DEV_MNEMONIC, description="seed of the role accounts on local chains")
    admin_key: str | None = Field(default=None, description="admin's private key (else from the mnemonic)")
    facilitator_key: str | None = None
    dso_key: str | None = None
    meter_key: str | None = None
    balancing_key: str | None = None
    devnet_port: int = Field(default=8545, ge=1024, le=65535)
    gate_closure_seconds: int = Field(default=300, ge=0, le=DAY_SECONDS)
    shortfall_price_per_kwh: int = Field(default=400_000, ge=0, description="token base units per kWh")
    surplus_price_per_kwh: int = Field(default=50_000, ge=0, description="token base units per kWh")
    database: str = Field(default="data/gridledger.sqlite", description="the facilitator's SQLite file")
    network_model: str = Field(
        default="1-LV-semiurb5--0-sw", description="SimBench LV grid code or pandapower JSON file of the network"
    )
    api_host: str = Field(default="127.0.0.1", description="where `gridledger serve` listens")
    api_port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        description="largest request body the API reads, in bytes (1 MiB); a larger one is answered 413",
    )
    api_url: str = Field(default="http://127.0.0.1:8000", description="the API the wallet commands talk to")
    relay_batch_size: int = Field(default=100, ge=1, le=500, description="orders per relay transaction")
    relay_max_wait_s: float = Field(default=0.2, ge=0, le=60, description="longest an accepted order waits")
