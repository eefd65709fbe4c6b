"""nemo-sync: an async SDK for the NemoVideo agent API.

Upload audio and video, say "sync the music to my cuts", get back a music-synced MP4::

    import nemo_sync

    async with nemo_sync.NemoClient() as nemo:
        session = await nemo.create_session()
"""

import typing as _typing

from nemo_sync._chat_turn import ChatResult, ChatTurn
from nemo_sync._client import NemoClient
from nemo_sync._events import (
    ChatEvent,
    HeartbeatEvent,
    StateDeltaEvent,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnCompleteEvent,
    UnknownEvent,
)
from nemo_sync._gui import SuggestedAction, SuggestedKind
from nemo_sync._jobstore import JobRecord
from nemo_sync._models import Credits, Media
from nemo_sync._render_job import RenderJob, RenderResult
from nemo_sync._routing import Action, route
from nemo_sync._session import Session
from nemo_sync._session_state import SessionState
from nemo_sync._store_protocol import JobStore
from nemo_sync._tracker import Tracker
from nemo_sync._upload import UploadFile
from nemo_sync._version import __version__
from nemo_sync.draft import (
    Change,
    Draft,
    DraftFormatError,
    DraftValidationError,
    Segment,
    Track,
    TrackType,
)
from nemo_sync.errors import (
    AgentError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    DownloadError,
    ExportBlockedError,
    FileTooLargeError,
    InsufficientCreditsError,
    InvalidUploadError,
    JobStoreUnavailableError,
    MissingClientIdError,
    NemoError,
    NothingToExportError,
    RateLimitError,
    RenderCancelledError,
    RenderError,
    RenderFailedError,
    RenderTimeoutError,
    RequestRefusedError,
    ResponseTooLargeError,
    ServerError,
    SessionNotFoundError,
    StorageFullError,
    StreamInterruptedError,
    UnsupportedFileError,
    UploadBatchError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APITimeoutError",
    "Action",
    "AgentError",
    "AuthenticationError",
    "Change",
    "ChatEvent",
    "ChatResult",
    "ChatTurn",
    "ClientClosedError",
    "ConfigurationError",
    "Credits",
    "DownloadError",
    "Draft",
    "DraftFormatError",
    "DraftValidationError",
    "ExportBlockedError",
    "FileTooLargeError",
    "HeartbeatEvent",
    "InsufficientCreditsError",
    "InvalidUploadError",
    "JobRecord",
    "JobStore",
    "JobStoreUnavailableError",
    "Media",
    "MissingClientIdError",
    "NemoClient",
    "NemoError",
    "NothingToExportError",
    "RateLimitError",
    "RedisJobStore",
    "RenderCancelledError",
    "RenderError",
    "RenderFailedError",
    "RenderJob",
    "RenderResult",
    "RenderTimeoutError",
    "RequestRefusedError",
    "ResponseTooLargeError",
    "Segment",
    "ServerError",
    "Session",
    "SessionNotFoundError",
    "SessionState",
    "StateDeltaEvent",
    "StorageFullError",
    "StreamInterruptedError",
    "SuggestedAction",
    "SuggestedKind",
    "TextEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "Track",
    "TrackType",
    "Tracker",
    "TurnCompleteEvent",
    "UnknownEvent",
    "UnsupportedFileError",
    "UploadBatchError",
    "UploadFile",
    "__version__",
    "route",
]


if _typing.TYPE_CHECKING:
    from nemo_sync._redis_store import RedisJobStore


def __getattr__(name: str) -> _typing.Any:
    # RedisJobStore needs the optional redis-py: imported on first use, so `import nemo_sync`
    # works without it and the error (naming the extra) comes only to who asks for it.
    if name == "RedisJobStore":
        from nemo_sync._redis_store import RedisJobStore

        return RedisJobStore
    raise AttributeError(f"module 'nemo_sync' has no attribute {name!r}")
