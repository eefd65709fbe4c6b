"""The NemoVideo API emulator: the whole API as a stateful in-process server.

It is what nemo-sync's own tests, ``nemo-sync demo`` and the CLI's ``--local`` mode run on,
and what your tests can run on too::

    from nemo_sync.emulator import Emulator

    async with Emulator() as emu:
        async with NemoClient(base_url=emu.url) as nemo:
            ...

See docs/testing.md for the pytest fixtures (``nemo_emulator``, ``nemo_client``), faults,
the fake clock and the request log.
"""

from nemo_sync.emulator._clock import FakeClock
from nemo_sync.emulator._emulator import Emulator
from nemo_sync.emulator._faults import Fault, FaultSet
from nemo_sync.emulator._recorder import RecordedRequest, RequestLog
from nemo_sync.emulator._render_worker import NO_RENDERER, RenderBackend
from nemo_sync.emulator._state import Account, MediaRecord, RenderRecord, SessionRecord
from nemo_sync.emulator._thread import EmulatorThread

__all__ = [
    "NO_RENDERER",
    "Account",
    "Emulator",
    "EmulatorThread",
    "FakeClock",
    "Fault",
    "FaultSet",
    "MediaRecord",
    "RecordedRequest",
    "RenderBackend",
    "RenderRecord",
    "RequestLog",
    "SessionRecord",
]
