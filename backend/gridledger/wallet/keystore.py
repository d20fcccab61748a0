"""Encrypted keystore files (Web3 Secret Storage, scrypt) for prosumer keys."""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from gridledger.errors import WalletError


def keystore_dir() -> Path:
    """Where keystores live: ``GRIDLEDGER_KEYSTORE_DIR``, else ``~/.gridledger/keystores``."""
    return Path(os.environ.get("GRIDLEDGER_KEYSTORE_DIR", Path.home() / ".gridledger" / "keystores"))


def _path(directory: Path | None, name: str) -> Path:
    directory = directory or keystore_dir()
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise WalletError(f"wallet name {name!r} is invalid: use letters, digits, '-' and '_'")
    return directory / f"{name}.json"


def path_of(name: str, *, directory: Path | None = None) -> Path:
    """Where the keystore of wallet ``name`` is, or would be; a WalletError for a name that cannot be a file."""
    return _path(directory, name)


def names(*, directory: Path | None = None) -> list[str]:
    """The wallets in the keystore directory, by name."""
    directory = directory or keystore_dir()
    return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []


def create(name: str, password: str, *, directory: Path | None = None, private_key: str | None = None) -> LocalAccount:
    """Creates (or imports, given ``private_key``) a key and writes it encrypted as ``<name>.json``."""
    if len(password) < 8:
        raise WalletError("the password must have at least 8 characters")
    path = _path(directory, name)
    if path.exists():
        raise WalletError(f"wallet {name!r} already exists at {path}; choose another name")
    try:
        account: LocalAccount = Account.from_key(private_key) if private_key else Account.create()
    except (ValueError, TypeError) as exc:
        raise WalletError(f"cannot import the private key: {exc}") from None
    keystore = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written owner-only: a keystore is only as safe as its password and its file mode.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keystore, handle)
    return account


def load(name: str, password: str, *, directory: Path | None = None) -> LocalAccount:
    """Unlocks the keystore ``<name>.json``."""
    path = _path(directory, name)
    if not path.exists():
        raise WalletError(f"no wallet {name!r} in {path.parent}; create or import it first")
    try:
        key = Account.decrypt(json.loads(path.read_text()), password)
    except ValueError as exc:
        raise WalletError(f"cannot unlock wallet {name!r}: {exc} (wrong password?)") from None
    account: LocalAccount = Account.from_key(key)
    return account


def address_of(name: str, *, directory: Path | None = None) -> str:
    """The wallet's address, read without unlocking it."""
    path = _path(directory, name)
    if not path.exists():
        raise WalletError(f"no wallet {name!r} in {path.parent}")
    return "0x" + str(json.loads(path.read_text())["address"]).removeprefix("0x")
