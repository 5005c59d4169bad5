"""interrupts_held: a signal during the block is delivered after it, never inside it; exit_code: a process whose
abandoned native call still runs ends with its own code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from maskdet.interrupts import interrupts_held

ROOT = Path(__file__).resolve().parents[1]


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


def test_a_process_whose_abandoned_native_call_still_runs_ends_at_once_with_its_code_and_output():
    """Python's shutdown would run under the abandoned thread (for FFmpeg opening a stream: a SIGSEGV after the
    summary). Here the thread never ends and is not a daemon, so a normal exit would hang: exit_code ends the
    process itself, with everything printed."""
    script = (
        "import sys, threading\n"
        "from maskdet.interrupts import exit_code, strand\n"
        "stuck = threading.Thread(target=threading.Event().wait)\n"
        "stuck.start()\n"
        "strand(stuck)\n"
        "print('interrupted: 0 frames from 1 inputs')\n"
        "sys.stdout.write('no newline at the end')\n"
        "sys.exit(exit_code(130))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == "interrupted: 0 frames from 1 inputs\nno newline at the end"


def test_with_nothing_stranded_the_code_is_only_returned():
    from maskdet.interrupts import exit_code

    assert exit_code(3) == 3
