"""Running an emulator on a background thread, for synchronous callers."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from nemo_sync.emulator._emulator import Emulator

T = TypeVar("T")
_START_TIMEOUT = 30.0


class EmulatorThread:
    """A running emulator on its own thread and event loop (see ``Emulator.run_in_thread``).

    The emulator's objects belong to that loop: change them through :meth:`call`.

    Attributes:
        emulator: The emulator.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="nemo-emulator", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"EmulatorThread({self.emulator!r})"

    def _main(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.emulator.start())
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.emulator.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def start(self) -> None:
        """Start the thread and wait until the emulator listens.

        Raises:
            OSError: (or whatever start raised) when the emulator could not start.
            TimeoutError: when it did not start in time.
        """
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise TimeoutError("the emulator thread did not start in time")
        if self._error is not None:
            self._thread.join()
            raise self._error

    @property
    def url(self) -> str:
        """The emulator's base URL."""
        return self.emulator.url

    @overload
    def call(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T: ...
    @overload
    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...
    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func(*args, **kwargs)`` on the emulator's loop and return its result (awaited
        when it is a coroutine), e.g. ``handle.call(emu.faults.add, "POST /run_sse", drop=True)``.
        """

        async def run() -> Any:
            result = func(*args, **kwargs)
            if inspect.isawaitable(result):
                return await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def stop(self) -> None:
        """Stop the emulator and wait for its thread (a no-op when already stopped)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> EmulatorThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
