"""pytest fixtures for testing code that uses nemo-sync (loaded by the ``pytest11`` entry point).

Fixtures:
    nemo_emulator: a running :class:`nemo_sync.emulator.Emulator` (function scope). Configure it
        with the marker ``@pytest.mark.nemo_emulator(silent_ratio=0.0, ...)``, which takes the
        Emulator's keyword arguments.
    nemo_client: a :class:`nemo_sync.NemoClient` on that emulator, with its own home folder, and
        retry waits recorded instead of slept.
    nemo_waits: the list of retry waits (seconds) the SDK skipped in this test.

The async fixtures need pytest-asyncio (installed with ``nemo-sync[dev]``). Imports stay inside
the fixtures, so projects that merely have nemo-sync installed pay nothing when pytest starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from nemo_sync import NemoClient
    from nemo_sync.emulator import Emulator

try:
    import pytest_asyncio

    HAVE_PYTEST_ASYNCIO = True
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    HAVE_PYTEST_ASYNCIO = False

MARKER = "nemo_emulator"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (``--strict-markers`` projects would reject it otherwise)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): keyword arguments for the nemo_emulator fixture's Emulator",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    # Closest marker last, so a function's marker overrides its class's or module's.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} takes keyword arguments only (Emulator options)"
            )
        options.update(marker.kwargs)
    return options


@pytest.fixture
def nemo_waits() -> Iterator[list[float]]:
    """Retry waits are recorded here instead of slept (``nemo_sync.testing.disable_waits``)."""
    from nemo_sync.testing import disable_waits

    with disable_waits() as waits:
        yield waits


if HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def nemo_emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
        """A running NemoVideo API emulator on 127.0.0.1 (an ephemeral port)."""
        from nemo_sync.emulator import Emulator

        async with Emulator(**_options(request)) as emulator:
            yield emulator

    @pytest_asyncio.fixture
    async def nemo_client(
        nemo_emulator: Emulator, nemo_waits: list[float], tmp_path: Path
    ) -> AsyncIterator[NemoClient]:
        """A NemoClient on the emulator, with a fresh home (credentials, job store)."""
        from nemo_sync import NemoClient

        async with NemoClient(base_url=nemo_emulator.url, home=tmp_path / "nemo-home") as client:
            yield client

else:  # pragma: no cover - exercised only without pytest-asyncio
    _NEEDS = (
        "the nemo_emulator and nemo_client fixtures need pytest-asyncio: "
        "pip install 'nemo-sync[dev]'"
    )

    @pytest.fixture
    def nemo_emulator() -> None:
        """Unavailable: pytest-asyncio is not installed."""
        pytest.fail(_NEEDS, pytrace=False)

    @pytest.fixture
    def nemo_client() -> None:
        """Unavailable: pytest-asyncio is not installed."""
        pytest.fail(_NEEDS, pytrace=False)
