from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from nemo_sync.emulator import Emulator
from nemo_sync.testing import disable_waits
from tests.emulator_raw import Raw, raw_client
from tests.redis_server import RedisServer
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
    # The session language comes from the locale: the same on every machine ("en").
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


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


@pytest.fixture
async def cdn() -> AsyncIterator[ScriptedServer]:
    """A second scripted server: another host, such as the CDN a render's video is on."""
    server = ScriptedServer()
    await server.start()
    yield server
    await server.close()


# The emulator for a test module: the plugin's own fixture, configured by the module's
# ``pytestmark = pytest.mark.nemo_emulator(...)`` (or a test's own marker), not a copy per file.


@pytest.fixture
def emu(nemo_emulator: Emulator) -> Emulator:
    return nemo_emulator


@pytest.fixture
async def raw_anonymous(emu: Emulator) -> AsyncIterator[Raw]:
    """Plain HTTP to the emulator, with no token yet."""
    async with raw_client(emu) as client:
        yield client


@pytest.fixture
async def raw(raw_anonymous: Raw) -> Raw:
    """Plain HTTP to the emulator, logged in with an anonymous token."""
    await raw_anonymous.login()
    return raw_anonymous


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a unix socket (skips, saying how to get one, when absent)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
