"""The one thread that talks to the chain.

Relaying, indexing and the facilitator's own transactions (registration, meter readings,
clearing, settlement) all run here, one after another: transaction nonces, gas and retries stay
in one place, and the embedded chain (py-evm, not thread-safe) is only ever touched by this
thread. The API thread hands work over with ``call`` and waits on the returned future.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from gridledger.service.indexer import Indexer
from gridledger.service.relayer import Relayer

log = logging.getLogger(__name__)
T = TypeVar("T")

IDLE_POLL_S = 0.05
ERROR_BACKOFF_S = 1.0


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
        """One round: commands, index, cancellations, due relays, index again."""
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

    # ─────────────── loop ───────────────

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
                self.last_error = None
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


def _run_into(fn: Callable[[], T], future: Future[T]) -> None:
    try:
        future.set_result(fn())
    except BaseException as exc:
        future.set_exception(exc)
