"""Emulator: the pytest plugin works in a throwaway project (entry point, fixtures, marker)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"

USER_TESTS = """
import pytest


async def test_credits(nemo_emulator, nemo_client):
    credits = await nemo_client.credits()
    assert credits.available == 100
    assert nemo_emulator.requests[-1].path == "/api/credits/balance/simple"


@pytest.mark.nemo_emulator(chat_cost=3, silent_ratio=0.0)
async def test_marker_configures_the_emulator(nemo_emulator):
    assert nemo_emulator.config.chat_cost == 3
    assert nemo_emulator.config.silent_ratio == 0.0


async def test_retry_waits_are_recorded_not_slept(nemo_emulator, nemo_client, nemo_waits):
    nemo_emulator.faults.add("GET /api/credits/balance/simple", status=429, retry_after=30)
    await nemo_client.credits()
    assert nemo_waits == [30.0]


async def test_each_test_gets_a_fresh_emulator(nemo_emulator):
    assert len(nemo_emulator.requests) == 0
    assert len(nemo_emulator.sessions) == 0


@pytest.mark.nemo_emulator(0.5)
async def test_marker_with_positional_arguments(nemo_emulator):
    pass
"""


def test_fixtures_in_a_throwaway_project(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI + "filterwarnings = error\n")
    pytester.makepyfile(test_app=USER_TESTS)
    # A fresh interpreter: the plugin must load through the pytest11 entry point alone.
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*keyword arguments only*"])


def test_fixtures_in_strict_asyncio_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI.replace("auto", "strict"))
    pytester.makepyfile(
        test_strict="""
        import pytest

        @pytest.mark.asyncio
        async def test_session(nemo_client, nemo_emulator):
            session = await nemo_client.create_session()
            assert session.id in nemo_emulator.sessions
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
