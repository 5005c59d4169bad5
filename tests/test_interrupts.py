"""interrupts_held: a signal during the block is delivered after it, never inside it."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from maskdet.interrupts import interrupts_held


def test_ctrl_c_inside_the_block_is_raised_after_it_completes():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("after the signal")
            steps.append("end of block")
    assert steps == ["after the signal", "end of block"]


def test_sigterm_goes_to_the_handler_the_program_set():
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: received.append(signum))
    try:
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)
            assert received == []
        assert received == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_without_a_signal_nothing_happens_and_handlers_are_restored():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with interrupts_held():
        pass
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_an_error_in_the_block_propagates_and_restores_the_handlers():
    with pytest.raises(ValueError):
        with interrupts_held():
            raise ValueError("boom")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_off_the_main_thread_the_block_just_runs():
    ran = []

    def work():
        with interrupts_held():
            ran.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert ran == [True]
