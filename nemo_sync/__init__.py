"""nemo-sync: an async SDK for the NemoVideo agent API.

Upload audio and video, say "sync the music to my cuts", get back a music-synced MP4::

    import nemo_sync

    async with nemo_sync.NemoClient() as nemo:
        session = await nemo.create_session()
"""

from nemo_sync._client import NemoClient
from nemo_sync._models import Credits
from nemo_sync._session import Session
from nemo_sync._version import __version__
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
    MissingClientIdError,
    NemoError,
    RateLimitError,
    RenderError,
    RenderFailedError,
    RenderTimeoutError,
    ServerError,
    SessionNotFoundError,
    StreamInterruptedError,
    UnsupportedFileError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APITimeoutError",
    "AgentError",
    "AuthenticationError",
    "ClientClosedError",
    "ConfigurationError",
    "Credits",
    "DownloadError",
    "ExportBlockedError",
    "FileTooLargeError",
    "InsufficientCreditsError",
    "MissingClientIdError",
    "NemoClient",
    "NemoError",
    "RateLimitError",
    "RenderError",
    "RenderFailedError",
    "RenderTimeoutError",
    "ServerError",
    "Session",
    "SessionNotFoundError",
    "StreamInterruptedError",
    "UnsupportedFileError",
    "__version__",
]
