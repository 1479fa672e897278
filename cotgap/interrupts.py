"""Ctrl-C honoured at any moment, even when a library swallows the ``KeyboardInterrupt``.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be; raised inside a
``__del__``, a weakref or garbage-collection callback (an engine being released at a stage's
start) it is printed as "Exception ignored" and lost, and a library may install its own SIGINT
handler. So the handler cotgap installs also *remembers* the interrupt, every stage re-installs
it if something replaced it, and the run checks the flag at each stage's start and end and after
every file it writes (``jsonio``): a lost interrupt surfaces at the next of these, and the CLI
exits 130 with finished stages and answered requests kept.
"""

from __future__ import annotations

import signal
import threading

_pending = False
_installed = False


def _handler(signum, frame):
    global _pending
    _pending = True
    raise KeyboardInterrupt


def install() -> None:
    """cotgap's SIGINT handler for this process (main thread only; elsewhere a no-op)."""
    global _pending, _installed
    if threading.current_thread() is not threading.main_thread():
        return
    _pending = False
    signal.signal(signal.SIGINT, _handler)
    _installed = True


def rearm() -> None:
    """Put the handler back if a library replaced it (e.g. an engine's own), then ``check``."""
    if _installed and threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not _handler:
        signal.signal(signal.SIGINT, _handler)
    check()


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C came and was swallowed somewhere since."""
    if _pending:
        raise KeyboardInterrupt
