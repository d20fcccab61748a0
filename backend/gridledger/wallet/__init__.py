"""Prosumer wallets: encrypted keystores and EIP-712 signing of orders."""
