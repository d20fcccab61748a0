"""The one thread that talks to the chain.

Relaying, indexing and the facilitator's own transactions (registration, meter readings,
clearing, settlement) all run here, one after another: transaction nonces, gas and retries stay
in one place, and the embedded chain (py-evm, not thread-safe) is only ever touched by this
thread. The API thread hands work over with ``call`` and waits on the returned future.

Before work that writes to the chain (and at least every ``NODE_CHECK_S`` otherwise) the
thread checks the node: ``node_problem`` is ``NodeUnreachable`` while it does not answer and
``ChainReset`` while the deployment's history is gone. Then nothing is sent, queued commands
fail with that error (the API answers 503), and the desks refuse new orders with it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import requests

from gridledger.errors import ChainReset, ConfigurationError, NodeUnreachable
from gridledger.service.indexer import Indexer
from gridledger.service.relayer import Relayer

log = logging.getLogger(__name__)
T = TypeVar("T")

IDLE_POLL_S = 0.05
ERROR_BACKOFF_S = 1.0
NODE_CHECK_S = 1.0
# What a node that went away raises through web3's HTTP provider.
NODE_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)


class ChainWorker:
    def __init__(self, indexer: Indexer, relayer: Relayer) -> None:
        self.indexer = indexer
        self.relayer = relayer
        self._commands: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drain = True
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.node_problem: ConfigurationError | None = None
        self._checked_at = 0.0
        self.head = indexer.last_block

    # ─────────────── control ───────────────

    def start(self) -> None:
        """Catches the index up, then runs the loop in a background thread."""
        self.indexer.sync()
        self._thread = threading.Thread(target=self._run, name="gridledger-chain", daemon=True)
        self._thread.start()

    def stop(self, *, drain: bool = True) -> None:
        """Finishes the current step, relays what is waiting (unless not ``drain``), and stops."""
        self._drain = drain
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def call(self, fn: Callable[[], T]) -> Future[T]:
        """Runs ``fn`` on the chain thread (or here, if the loop is not running)."""
        future: Future[T] = Future()
        if not self.running:
            _run_into(fn, future)
            return future
        self._commands.put((fn, future))
        self._wake.set()
        return future

    def step(self, *, force_relay: bool = False) -> None:
        """One round: the node's check, commands, index, cancellations, due relays, index again."""
        writes_due = not self._commands.empty() or self.relayer.seconds_until_due() == 0.0 or force_relay
        if writes_due or time.monotonic() - self._checked_at >= NODE_CHECK_S:
            self.check_node()
        while True:
            try:
                fn, future = self._commands.get_nowait()
            except queue.Empty:
                break
            _run_into(fn, future)
        self.head = self.indexer.head()
        self.indexer.sync(to_block=self.head)
        if self.relayer.process_cancellations() + self.relayer.relay_due(force=force_relay):
            self.indexer.sync()

    def check_node(self) -> None:
        """Raises NodeUnreachable or ChainReset if the node cannot be used (see the module)."""
        try:
            if self.indexer.check_chain() | bool(self.relayer.requeue_lost()):
                self.relayer.ledger.tx.forget_nonce()  # the node lost our latest transactions
            behind = self.relayer.ledger.chain.keep_clock()
            if behind:
                log.warning("the node's clock ran %d s back (restarted from a state file): set forward again", behind)
        except NODE_ERRORS as exc:
            raise NodeUnreachable(
                f"the chain node does not answer ({type(exc).__name__}); accepted orders are kept and relayed "
                "when it is back"
            ) from exc
        self._checked_at = time.monotonic()

    # ─────────────── loop ───────────────

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
                self.last_error = None
                self.node_problem = None
            except (NodeUnreachable, ChainReset, *NODE_ERRORS) as exc:
                self._node_failed(exc)
                time.sleep(ERROR_BACKOFF_S)
                continue
            except Exception as exc:  # a node that went away must not kill the service
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("chain worker step failed; retrying")
                time.sleep(ERROR_BACKOFF_S)
                continue
            due = self.relayer.seconds_until_due()
            timeout = IDLE_POLL_S if due is None else min(IDLE_POLL_S, due)
            if self._commands.empty():
                self._wake.wait(timeout)
            self._wake.clear()
        if not self._drain:
            return
        try:
            self.step(force_relay=True)
        except Exception:
            log.exception("final relay on shutdown failed; the orders stay queued for the next start")

    def _node_failed(self, exc: BaseException) -> None:
        problem = exc if isinstance(exc, (NodeUnreachable, ChainReset)) else None
        if problem is None:
            problem = NodeUnreachable(
                f"the chain node does not answer ({type(exc).__name__}); accepted orders are kept and relayed "
                "when it is back"
            )
        if self.node_problem is None or str(self.node_problem) != str(problem):
            log.warning("chain node unusable: %s", problem)
        self.node_problem = problem
        self.last_error = f"{type(problem).__name__}: {problem}"
        self._checked_at = 0.0  # check again before anything is sent
        self.relayer.ledger.tx.forget_nonce()  # a restarted node has lost its pool
        while True:  # the work waiting for the chain fails now instead of waiting for it
            try:
                _, future = self._commands.get_nowait()
            except queue.Empty:
                break
            future.set_exception(problem)


def _run_into(fn: Callable[[], T], future: Future[T]) -> None:
    try:
        future.set_result(fn())
    except BaseException as exc:
        future.set_exception(exc)
