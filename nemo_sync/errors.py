"""The errors nemo-sync raises.

Every error the SDK raises on purpose is a :class:`NemoError`. The tree::

    NemoError
    ├── ClientClosedError             the client was used after aclose()
    ├── ConfigurationError            a setting is invalid (base URL, home folder, ...)
    ├── APIError                      the service answered with an error (status and/or code)
    │   ├── AuthenticationError         1001: bad or expired token
    │   ├── SessionNotFoundError        1002: unknown session id
    │   ├── InsufficientCreditsError    2001: no credits (carries .bind_url)
    │   ├── UnsupportedFileError        4001: format not accepted (also raised locally)
    │   ├── FileTooLargeError           4002: over 500 MB (also raised locally)
    │   ├── ExportBlockedError          HTTP 402: the plan blocks export
    │   ├── RateLimitError              HTTP 429 (carries .retry_after)
    │   ├── MissingClientIdError        HTTP 400: missing X-Client-Id
    │   ├── ServerError                 HTTP 5xx
    │   ├── StorageFullError            HTTP 507: the service's disk is full (not temporary)
    │   ├── RequestRefusedError         {"success": false, "error": ...}, HTTP 200 included
    │   └── AgentError                  the agent failed or crashed inside a chat stream
    ├── APIConnectionError            the request did not complete (network)
    │   ├── APITimeoutError             ... because a timeout ran out
    │   └── StreamInterruptedError      a chat stream dropped before the turn finished
    ├── APIResponseError              a reply broke the API contract
│   └── ResponseTooLargeError       ... by being larger than a cap (JSON body, SSE line/event)
    ├── InvalidUploadError            an upload cannot be sent as given (also a ValueError)
    ├── UploadBatchError              some uploads of upload_many() failed (.results, .errors)
    ├── DraftFormatError              JSON that is not draft-shaped (also a ValueError)
    ├── DraftValidationError          a draft builder got an impossible segment (a ValueError)
    ├── NothingToExportError          the timeline has no track with segments (nothing sent)
    ├── RenderError
    │   ├── RenderFailedError           the render job failed server-side
    │   ├── RenderCancelledError        the render job was cancelled (RenderJob.cancel())
    │   └── RenderTimeoutError          wait() ran out of time (the job goes on)
    └── DownloadError                 a download was incomplete or refused (carries .status)

Messages say what happened and what to do. They never contain a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APITimeoutError",
    "AgentError",
    "AuthenticationError",
    "ClientClosedError",
    "ConfigurationError",
    "DownloadError",
    "DraftFormatError",
    "DraftValidationError",
    "ExportBlockedError",
    "FileTooLargeError",
    "InsufficientCreditsError",
    "InvalidUploadError",
    "JobStoreUnavailableError",
    "MissingClientIdError",
    "NemoError",
    "NothingToExportError",
    "RateLimitError",
    "RenderCancelledError",
    "RenderError",
    "RenderFailedError",
    "RenderTimeoutError",
    "RequestRefusedError",
    "ResponseTooLargeError",
    "ServerError",
    "SessionNotFoundError",
    "StorageFullError",
    "StreamInterruptedError",
    "UnsupportedFileError",
    "UploadBatchError",
]


class NemoError(Exception):
    """Base class of every error nemo-sync raises on purpose."""


class ClientClosedError(NemoError):
    """The client was used after it was closed."""


class ConfigurationError(NemoError):
    """A setting (argument or environment variable) is invalid."""


class APIError(NemoError):
    """The service answered with an error.

    Attributes:
        message: What went wrong and what to do, in words.
        status: The HTTP status, or None when the error was found locally.
        code: The envelope's ``code``, or None when the reply had none.
        request_id: The server's request id (``X-Request-Id``), when given.
        endpoint: ``"METHOD /path"`` of the call, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        request_id: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.endpoint = endpoint

    def __str__(self) -> str:
        where = []
        if self.endpoint:
            where.append(self.endpoint)
        if self.status is not None:
            where.append(f"HTTP {self.status}")
        if self.code is not None:
            where.append(f"code {self.code}")
        if self.request_id:
            where.append(f"request {self.request_id}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r}, endpoint={self.endpoint!r})"
        )


class AuthenticationError(APIError):
    """Code 1001: the token is bad or expired."""


class SessionNotFoundError(APIError):
    """Code 1002: the session id is unknown to the service."""


class InsufficientCreditsError(APIError):
    """Code 2001: not enough credits. ``bind_url`` registers an anonymous account, when given."""

    def __init__(self, message: str, *, bind_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.bind_url = bind_url


class UnsupportedFileError(APIError):
    """Code 4001: the file's format is not accepted. ``supported`` lists what is."""

    def __init__(self, message: str, *, supported: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.supported = tuple(supported)


class FileTooLargeError(APIError):
    """Code 4002: the file is over the size limit."""

    def __init__(
        self, message: str, *, size: int | None = None, limit: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.size = size
        self.limit = limit


class ExportBlockedError(APIError):
    """HTTP 402: the account's plan does not allow export (this is not about credits)."""


class RateLimitError(APIError):
    """HTTP 429: too many requests. ``retry_after`` is the wait the server asked for, in s."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class MissingClientIdError(APIError):
    """HTTP 400: the anonymous-token call had no ``X-Client-Id``."""


class ServerError(APIError):
    """HTTP 5xx: the service (or a proxy in front of it) failed."""


class StorageFullError(APIError):
    """HTTP 507 Insufficient Storage: the service has no room to store the upload or the
    render (its disk is full). Not a :class:`ServerError`: it does not pass by itself, so it
    is never retried; the message says which disk, when the service named it (the emulator
    and ``nemo-sync --local`` do), and what to do."""


class RequestRefusedError(APIError):
    """The service answered ``{"success": false, "error": ...}`` [R], HTTP 200 included, with
    no code that names a more specific error. The message carries the service's ``error``."""


class AgentError(APIError):
    """The agent reported an error (``errorCode``) inside a chat stream."""


class APIConnectionError(NemoError):
    """The request did not complete: the network failed or the server went away.

    ``request_sent`` is False only when the request provably never reached the server
    (the connection could not be made), which is when even a POST may be sent again.
    """

    def __init__(
        self, message: str, *, endpoint: str | None = None, request_sent: bool = True
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """A timeout ran out before the reply was complete."""


class StreamInterruptedError(APIConnectionError):
    """A chat stream ended before the turn finished.

    The message was NOT sent again (chat is not idempotent). ``events`` holds what arrived;
    ``Session.state()`` tells what the turn changed.
    """

    def __init__(
        self, message: str, *, events: Sequence[Any] = (), endpoint: str | None = None
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.events = list(events)


class APIResponseError(NemoError):
    """A reply broke the API contract (not JSON, a field missing or of the wrong type)."""

    def __init__(self, message: str, *, endpoint: str | None = None, body: str = "") -> None:
        super().__init__(f"{endpoint}: {message}" if endpoint else message)
        self.message = message
        self.endpoint = endpoint
        self.body = body


class ResponseTooLargeError(APIResponseError):
    """A reply (a JSON body, an event-stream line or event) was larger than its cap.

    Nothing past the cap was read. ``limit`` is the cap in bytes; the caps are settable
    (``NemoClient(max_response_bytes=...)``).
    """

    def __init__(self, message: str, *, endpoint: str | None = None, limit: int) -> None:
        super().__init__(message, endpoint=endpoint)
        self.limit = limit


class RenderError(NemoError):
    """Base class of render job errors. ``job_id`` names the job."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id


class RenderFailedError(RenderError):
    """The render job failed server-side; ``reason`` says why."""

    def __init__(self, message: str, *, job_id: str, reason: str) -> None:
        super().__init__(message, job_id=job_id)
        self.reason = reason


class RenderCancelledError(RenderError):
    """The render job was cancelled (by :meth:`RenderJob.cancel`, another process, or the
    service), so it will never have a video. Not a :class:`RenderFailedError`: nothing went
    wrong with the render, someone stopped it."""


class RenderTimeoutError(RenderError):
    """wait() ran out of time. The job is not cancelled: pick it up with render_job(job_id)."""


class InvalidUploadError(NemoError, ValueError):
    """The file to upload cannot be sent as given (missing, a folder, empty, size unknown...).

    Raised before anything is sent, except when the source changes while it is being sent.
    ``filename`` names the file.
    """

    def __init__(self, message: str, *, filename: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename


class UploadBatchError(NemoError):
    """Some uploads of an :meth:`Session.upload_many` batch failed.

    Uploads that had started were let finish; the rest were not sent.

    Attributes:
        results: Per source, in input order: its :class:`Media`, or ``None`` when it failed
            or was not sent.
        errors: The failures, by the source's index in the input.
    """

    def __init__(
        self, message: str, *, results: Sequence[Any], errors: dict[int, BaseException]
    ) -> None:
        super().__init__(message)
        self.message = message
        self.results = tuple(results)
        self.errors = dict(errors)

    @property
    def not_sent(self) -> tuple[int, ...]:
        """Indexes of the sources that were not sent (upload them again)."""
        return tuple(
            i for i, media in enumerate(self.results) if media is None and i not in self.errors
        )


class DraftFormatError(NemoError, ValueError):
    """JSON that is not draft-shaped (``t`` not a list, a track not an object, too deep...)."""


class DraftValidationError(NemoError, ValueError):
    """A draft builder was asked for a segment that cannot be (negative times, overlaps...)."""


class NothingToExportError(NemoError):
    """The timeline has nothing to render (no track with segments); no request was sent.

    Generate or edit first (``session.send("...")``), then export.
    """


class DownloadError(NemoError):
    """A download failed or was incomplete. No partial file is left at the destination.

    ``status`` is the HTTP status when the server refused the download, else None.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class JobStoreUnavailableError(NemoError):
    """The render job store could not be reached (a Redis that is down or refuses, say).

    Raised instead of going on where going on could do harm: an export with an idempotency
    key is not sent when the key cannot be reserved, since a second render of the same edit
    could follow.
    """
