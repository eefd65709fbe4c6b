"""What every CLI command gets: output, the client (on the emulator with --local), state."""

from __future__ import annotations

import argparse
import json
import os
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from nemo_sync._atomic import write_private
from nemo_sync._client import NemoClient
from nemo_sync._session import Session
from nemo_sync._settings import resolve_base_url, resolve_home
from nemo_sync.cli._output import Output
from nemo_sync.errors import ConfigurationError

CLI_STATE = "cli-state.json"


LOCAL_FOLDER = "local"
EMULATOR_FOLDER = "emulator"
LOCAL_HOST = "127.0.0.1"


def _emulator_settings() -> dict[str, Any]:
    """Knobs for the embedded emulator, for scripted sessions and tests:
    NEMO_EMULATOR_SILENT_RATIO and NEMO_EMULATOR_GUI_PHRASE_RATIO (0-1), NEMO_EMULATOR_SEED
    and NEMO_EMULATOR_RENDER_SECONDS (the shortest a render takes)."""
    settings: dict[str, Any] = {}
    render_seconds = os.environ.get("NEMO_EMULATOR_RENDER_SECONDS")
    if render_seconds:
        settings["render_seconds"] = float(render_seconds)
    ratio = os.environ.get("NEMO_EMULATOR_SILENT_RATIO")
    if ratio:
        settings["silent_ratio"] = float(ratio)
    gui = os.environ.get("NEMO_EMULATOR_GUI_PHRASE_RATIO")
    if gui:
        settings["gui_phrase_ratio"] = float(gui)
    seed = os.environ.get("NEMO_EMULATOR_SEED")
    if seed:
        settings["seed"] = int(seed)
    return settings


class Context:
    """Per-invocation context: parsed arguments, output, and lazily opened resources."""

    def __init__(self, args: argparse.Namespace, output: Output, stack: AsyncExitStack) -> None:
        self.args = args
        self.output = output
        self._stack = stack
        self._client: NemoClient | None = None
        self.emulator_url: str | None = None
        if args.local:
            # Every --local command's emulator, this one's or an earlier process's (in job
            # records), listens on this host on a port that is gone once its command ends.
            output.dead_links = f"http://{LOCAL_HOST}:"

    @property
    def home(self) -> Path:
        """NEMO_HOME; with --local, a separate folder so the emulator's tokens never
        overwrite the real service's credentials."""
        home = resolve_home(self.args.home)
        return home / LOCAL_FOLDER if self.args.local else home

    @property
    def local_data_dir(self) -> Path:
        """The local backend's folder: its database, uploads and renders."""
        return resolve_home(self.args.home) / LOCAL_FOLDER / EMULATOR_FOLDER

    async def start_emulator(self) -> str:
        """Start the embedded emulator in this process (once) and return its URL.

        Its state is kept under the home, so every ``--local`` command, in any process,
        talks to one local service; only the port differs from one process to the next.
        """
        if self.emulator_url is None:
            from nemo_sync.emulator import Emulator

            emulator = await self._stack.enter_async_context(
                Emulator(host=LOCAL_HOST, data_dir=self.local_data_dir, **_emulator_settings())
            )
            self.emulator_url = emulator.url
            self.output.info(f"local emulator at {emulator.url}")
        return self.emulator_url

    async def client(self) -> NemoClient:
        """The client for this invocation (opened once, closed when the command ends)."""
        if self._client is None:
            base_url = self.args.base_url
            web_url = None
            if self.args.local:
                # The emulator serves the browser links of its own projects too.
                base_url = web_url = await self.start_emulator()
            self._client = await self._stack.enter_async_context(
                NemoClient(base_url=base_url, web_url=web_url, home=self.home)
            )
        return self._client

    # The last session used, per API URL, so `state` and `export` work without --session.

    def _state_file(self) -> Path:
        return self.home / CLI_STATE

    def _load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def remember_session(self, session: Session) -> None:
        """Make ``session`` the default for later commands against the same API."""
        state = self._load_state()
        remembered = {"id": session.id, "task_id": session.task_id}
        state.setdefault("sessions", {})[self._api_key()] = remembered
        write_private(self._state_file(), json.dumps(state, indent=2).encode())

    async def session(self, session_id: str | None) -> Session:
        """The session named by --session, else the last one used against this API."""
        client = await self.client()
        task_id: str | None = None
        chosen: Any = session_id
        if not chosen:
            sessions = self._load_state().get("sessions")
            chosen = sessions.get(self._api_key()) if isinstance(sessions, dict) else None
            if isinstance(chosen, dict):  # {"id", "task_id"}; older versions kept the id only
                task_id = chosen.get("task_id") if isinstance(chosen.get("task_id"), str) else None
                chosen = chosen.get("id")
        if not chosen or not isinstance(chosen, str):
            raise ConfigurationError(
                "no session yet: run `nemo-sync sync FILES...` or `nemo-sync chat` first, "
                "or pass --session ID"
            )
        return client.session(chosen, task_id=task_id)

    def _api_key(self) -> str:
        if self.args.local:
            return "local"
        return str(resolve_base_url(self.args.base_url))
