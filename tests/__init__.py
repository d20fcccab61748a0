"""GridLedger's tests. A regular package, so that `tests.…` imports resolve here and not to a
third-party top-level `tests` package (slither-analyzer 0.10 installs one into site-packages)."""
