"""What every CLI command gets: output, the client (on the emulator with --local), state."""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from nemo_sync._atomic import write_private
from nemo_sync._client import NemoClient
from nemo_sync._safe_file import json_kind, read_state_file, set_aside
from nemo_sync._session import Session
from nemo_sync._settings import resolve_base_url, resolve_home
from nemo_sync.cli._output import Output
from nemo_sync.errors import ConfigurationError

if TYPE_CHECKING:
    from nemo_sync._store_protocol import JobStore

logger = logging.getLogger("nemo_sync")

CLI_STATE = "cli-state.json"
# A session id per API URL: a few hundred bytes. Anything much larger is not this file.
_MAX_CLI_STATE = 64 * 1024


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


@attrs.frozen
class RememberedSession:
    """The last session used against one API: its id, its task id, and fields kept as found."""

    id: str
    task_id: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        task = {"task_id": self.task_id} if self.task_id is not None else {}
        return {**self.extra, "id": self.id, **task}


@attrs.frozen
class CliState:
    """What the last-session file holds: a session per API (``"local"`` or the API URL), and
    the fields a newer version wrote, kept and written back unchanged."""

    sessions: Mapping[str, RememberedSession] = attrs.field(factory=dict)
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, "sessions": {k: s.to_json() for k, s in self.sessions.items()}}


class DamagedStateError(ValueError):
    """The last-session file is there but unusable; the message says how."""


def parse_cli_state(data: bytes) -> CliState:
    """The last-session file's record.

    Raises:
        DamagedStateError: when the file is damaged; the message says how ("it is not JSON",
            "the session for 'local' is a number, not an object").
    """
    if not data.strip():
        raise DamagedStateError("it is empty")
    try:
        parsed: Any = json.loads(data)
    except ValueError:
        raise DamagedStateError("it is not JSON") from None
    if not isinstance(parsed, dict):
        raise DamagedStateError(f"it is {json_kind(parsed)}, not a JSON object")
    found = parsed.get("sessions", {})
    if not isinstance(found, dict):
        raise DamagedStateError(f"sessions is {json_kind(found)}, not an object")
    sessions: dict[str, RememberedSession] = {}
    for api, entry in found.items():
        if isinstance(entry, str) and entry:  # older versions kept the id only
            sessions[api] = RememberedSession(entry)
            continue
        if not isinstance(entry, dict):
            raise DamagedStateError(f"the session for {api!r} is {json_kind(entry)}, not an object")
        session_id, task_id = entry.get("id"), entry.get("task_id")
        if not isinstance(session_id, str) or not session_id:
            raise DamagedStateError(f"the session for {api!r} has no id")
        if task_id is not None and not isinstance(task_id, str):
            raise DamagedStateError(
                f"the task_id for {api!r} is {json_kind(task_id)}, not a string"
            )
        rest = {k: v for k, v in entry.items() if k not in ("id", "task_id")}
        sessions[api] = RememberedSession(session_id, task_id or None, rest)
    return CliState(sessions, {k: v for k, v in parsed.items() if k != "sessions"})


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

            # The local service is the user's own: lost or damaged credentials get the same
            # account a new token (its sessions, its credits), not the service's 7-day 429.
            emulator = await self._stack.enter_async_context(
                Emulator(
                    host=LOCAL_HOST,
                    data_dir=self.local_data_dir,
                    reissue_anonymous_tokens=True,
                    **_emulator_settings(),
                )
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
                NemoClient(
                    base_url=base_url,
                    web_url=web_url,
                    home=self.home,
                    job_store=await self._store(),
                )
            )
        return self._client

    async def _store(self) -> JobStore | None:
        """The Redis job store when the command was given a Redis URL (``jobs --redis``, else
        NEMO_REDIS_URL); None, the file store under the home, otherwise."""
        url = getattr(self.args, "redis", None)
        if not url:
            return None
        from nemo_sync._redis_store import RedisJobStore  # redis-py is an optional extra

        store = RedisJobStore(url)
        self._stack.push_async_callback(store.aclose)
        return store

    # The last session used, per API URL, so `state` and `export` work without --session.

    def _state_file(self) -> Path:
        return self.home / CLI_STATE

    def _load_state(self) -> CliState:
        """The last-session file's record; a damaged file is moved aside (one line says where)
        and counts as empty, so no command fails for it."""
        path = self._state_file()
        found = read_state_file(path, limit=_MAX_CLI_STATE)
        problem = found.problem
        if problem is None and found.data is not None:
            try:
                return parse_cli_state(found.data)
            except DamagedStateError as exc:
                problem = str(exc)
        if problem is not None:
            set_aside(path, problem)
        return CliState()

    def remember_session(self, session: Session) -> None:
        """Make ``session`` the default for later commands against the same API.

        The command's work is done by now: a file that cannot be written (a read-only home, a
        full disk) is one warning line, not a failed command.
        """
        state = self._load_state()
        remembered = RememberedSession(session.id, session.task_id)
        state = attrs.evolve(state, sessions={**state.sessions, self._api_key(): remembered})
        path = self._state_file()
        try:
            write_private(path, json.dumps(state.to_json(), indent=2).encode())
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
            logger.warning(
                "could not remember session %s in %s (%s); pass --session %s next time",
                session.id,
                path,
                reason,
                session.id,
            )

    async def session(self, session_id: str | None) -> Session:
        """The session named by --session, else the last one used against this API."""
        client = await self.client()
        task_id: str | None = None
        chosen = session_id
        if not chosen:
            remembered = self._load_state().sessions.get(self._api_key())
            if remembered is not None:
                chosen, task_id = remembered.id, remembered.task_id
        if not chosen:
            raise ConfigurationError(
                "no session yet: run `nemo-sync sync FILES...` or `nemo-sync chat` first, "
                "or pass --session ID"
            )
        return client.session(chosen, task_id=task_id)

    def _api_key(self) -> str:
        if self.args.local:
            return "local"
        return str(resolve_base_url(self.args.base_url))
