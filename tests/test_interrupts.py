"""The signal policy itself, with real signals sent to this process.

The subprocess tests in test_resume.py cover whole runs; these pin the properties
that made the difference there: a stop outside the calls is not an ``Exception``
(a library's ``except Exception`` must not swallow it), and after the first signal
or the commit, signals change nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from enrich.interrupts import Interrupts, SignalStop


def _wait_for_the_handler() -> None:
    time.sleep(0.2)  # the handler runs between two bytecodes of this loop
    pytest.fail("the signal did not stop this")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_outside_the_calls_passes_through_except_exception(signum: int) -> None:
    before = signal.getsignal(signum)
    with Interrupts(), pytest.raises(SignalStop):
        try:  # what phonenumbers.parse does around its work
            os.kill(os.getpid(), signum)
            _wait_for_the_handler()
        except Exception:  # the point of the test
            pytest.fail("swallowed by except Exception")
    assert signal.getsignal(signum) is before  # restored


def test_during_the_calls_one_stop_then_nothing() -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        stops: list[int] = []
        with Interrupts() as it, it.calling(loop, lambda: stops.append(1)):
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
                os.kill(os.getpid(), sig)
                await asyncio.sleep(0.05)
        return stops

    assert asyncio.run(main()) == [1]


def test_a_signal_during_the_commit_waits_and_then_changes_nothing() -> None:
    with Interrupts() as it:
        with it.committing():
            os.kill(os.getpid(), signal.SIGTERM)  # blocked: pending until the block ends
            time.sleep(0.05)
        time.sleep(0.05)  # delivered here, and ignored: the outputs are in place
        assert it.committed
