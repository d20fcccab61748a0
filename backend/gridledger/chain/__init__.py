"""The ledger side: compiling, connecting to a chain, deploying and transacting."""

import contextlib
import io

# eth-tester prints "Package 'py-evm' not found." on stdout, three times, when it is imported
# without py-evm, which the revm embedded chain does not need (py-evm is a dev dependency).
# Import it here, before any module of this package does, with that notice swallowed.
with contextlib.redirect_stdout(io.StringIO()):
    import eth_tester  # noqa: F401
