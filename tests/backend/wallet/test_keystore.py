"""Encrypted keystores: create, import, unlock, and the refusals."""

from __future__ import annotations

import json
import stat

import pytest
from eth_account import Account

from gridledger.errors import WalletError
from gridledger.wallet import keystore


def test_create_then_unlock_gives_the_same_key(tmp_path) -> None:
    created = keystore.create("alice", "correct horse", directory=tmp_path)
    path = tmp_path / "alice.json"
    stored = json.loads(path.read_text())
    assert stored["crypto"]["kdf"] == "scrypt"  # encrypted, not a plain key
    assert created.key.hex() not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore.load("alice", "correct horse", directory=tmp_path).address == created.address
    assert keystore.address_of("alice", directory=tmp_path).lower() == created.address.lower()


def test_import_keeps_the_given_key(tmp_path) -> None:
    key = Account.create().key.hex()
    imported = keystore.create("bob", "long enough", directory=tmp_path, private_key=key)
    assert imported.address == Account.from_key(key).address


def test_wrong_password_is_refused(tmp_path) -> None:
    keystore.create("carol", "right password", directory=tmp_path)
    with pytest.raises(WalletError, match="cannot unlock wallet 'carol'"):
        keystore.load("carol", "wrong password", directory=tmp_path)


@pytest.mark.parametrize(
    ("name", "password", "match"),
    [("bad/name", "long enough", "letters, digits"), ("dave", "short", "at least 8 characters")],
)
def test_bad_names_and_passwords_are_refused(tmp_path, name, password, match) -> None:
    with pytest.raises(WalletError, match=match):
        keystore.create(name, password, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_wallet_is_never_overwritten(tmp_path) -> None:
    first = keystore.create("erin", "long enough", directory=tmp_path)
    with pytest.raises(WalletError, match="already exists"):
        keystore.create("erin", "long enough", directory=tmp_path)
    assert keystore.load("erin", "long enough", directory=tmp_path).address == first.address


def test_a_bad_private_key_is_refused(tmp_path) -> None:
    with pytest.raises(WalletError, match="cannot import"):
        keystore.create("frank", "long enough", directory=tmp_path, private_key="0x1234")
