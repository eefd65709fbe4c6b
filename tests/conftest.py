from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from nemo_sync.testing import disable_waits
from tests.scripted import ScriptedServer

_ENV = (
    "NEMO_TOKEN",
    "NEMO_API_URL",
    "NEMO_BASE_URL",
    "NEMO_WEB_URL",
    "NEMO_CLIENT_ID",
    "NEMO_HOME",
    "NEMO_LOG",
    "NEMO_PLATFORM",
    "SKILL_SOURCE",
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's environment or writes to their home."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEMO_HOME", str(tmp_path / "nemo-home"))
    # The machine's shared client id (~/.config/nemovideo/client_id) stays the developer's.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


@pytest.fixture(autouse=True)
def _no_real_waits() -> Iterator[list[float]]:
    """Retry waits are recorded, not slept: no test sleeps for a Retry-After."""
    with disable_waits() as recorded:
        yield recorded


@pytest.fixture
def waits(_no_real_waits: list[float]) -> list[float]:
    """The retry waits the SDK would have slept, in seconds."""
    return _no_real_waits


@pytest.fixture
async def api(waits: list[float]) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    server.issue_tokens()
    await server.start()
    yield server
    await server.close()
