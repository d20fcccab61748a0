"""The ledger side: compiling, connecting to a chain, deploying and transacting."""
