"""Ctrl-C and SIGTERM: the first one ends the run; those that follow wait until its record is written.

A user who presses Ctrl-C twice, or a scheduler that sends SIGTERM and then
Ctrl-C, must not lose the record the first signal is writing, and must not
see a traceback from code that was cleaning up. Inside `first_signal_ends()`
one handler serves SIGINT and SIGTERM: the first signal raises
KeyboardInterrupt (SIGTERM: `Terminated`) where the program is, and any
signal after it is held (dropped) rather than raised into the code that is
writing the record. A run ends the same whichever of them came.

On leaving the block the previous handlers come back, unless `hold_after`
is set and a signal ended the block: a command that is ending because of a signal
keeps holding them, so a second Ctrl-C during the interpreter's exit cannot
print "Exception ignored in atexit callback". Outside the main thread
(an embedding application, a Ray worker) signals cannot be handled there,
and the block changes nothing.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from suite.errors import Terminated

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    ending = False  # a signal has been raised in this block (or one is deferred): later ones are held
    held = 0  # how many were held (for tests and messages)
    first_held: int | None = None  # the first signal held inside `deferred()`, raised when it ends


def _handler(signum, _frame) -> None:
    if _State.ending:
        _State.held += 1
        if _State.first_held is None:
            _State.first_held = signum
        return
    _State.ending = True
    if signum == signal.SIGTERM:
        raise Terminated("terminated by SIGTERM")
    raise KeyboardInterrupt


def ending() -> bool:
    """Whether a signal has already ended the current block."""
    return _State.ending


@contextmanager
def first_signal_ends(hold_after: bool = False) -> Iterator[None]:
    """Within: the first SIGINT or SIGTERM raises, later ones are held (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer = signal.getsignal(signal.SIGINT) is _handler  # a block inside another (a run inside a command)
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    if not outer:
        _State.ending, _State.held = False, 0
    try:
        yield
    finally:
        if not (hold_after and _State.ending):
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if not outer:
                _State.ending = False


@contextmanager
def deferred() -> Iterator[None]:
    """Within: SIGINT and SIGTERM wait; when the block ends, the first that came is raised (unless a signal
    had already ended the enclosing block). For a short write that must not be cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed = signal.getsignal(signal.SIGINT) is _handler
    previous = None if installed else {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    was_ending, _State.ending, _State.first_held = _State.ending, True, None
    try:
        yield
    finally:
        held, _State.ending, _State.first_held = _State.first_held, was_ending, None
        if previous is not None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if held is not None and not was_ending:
            _State.ending = installed  # as if the signal had come now
            raise Terminated("terminated by SIGTERM") if held == signal.SIGTERM else KeyboardInterrupt()
