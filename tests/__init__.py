"""GridLedger's tests: a package, so ``tests.conftest`` is this one, not slither-analyzer's ``tests``."""
