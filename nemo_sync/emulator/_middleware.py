"""What every request goes through: the request id, the log, faults, and error envelopes.

An error the emulator did not expect (a bug) is logged at ERROR on the ``nemo_sync.emulator``
logger with its traceback, and answered with a 500 envelope that names it. The logger has a
``NullHandler``: Python's last-resort handler would otherwise print that traceback on the
stderr of whatever embeds the emulator (the CLI's ``--local`` commands), to a user who can do
nothing with it; an application that configures logging (``-v``, pytest) still gets it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from nemo_sync.emulator._api_errors import ApiError, DiskFull, is_disk_full
from nemo_sync.emulator._faults import Fault
from nemo_sync.emulator._media import WRITER
from nemo_sync.emulator._recorder import RecordedRequest, redact_headers

if TYPE_CHECKING:
    from nemo_sync.emulator._emulator import Emulator

logger = logging.getLogger("nemo_sync.emulator")
logger.addHandler(logging.NullHandler())

REQUEST_ID = web.RequestKey("request_id", str)
FAULT = web.RequestKey("fault", Fault)

ForcedError = Callable[[ApiError, web.Request], ApiError]


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every reply, streamed ones included, gets ``X-Request-Id``."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-Id"] = request_id


def _error_response(exc: ApiError) -> web.Response:
    return web.json_response(exc.envelope(), status=exc.status, headers=exc.headers)


async def drop_response(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Send the headers and half the body, then close the connection (the ``drop`` fault)."""
    body = response.body if isinstance(response.body, bytes) else b""
    partial = web.StreamResponse(status=response.status, headers=response.headers)
    partial.content_length = len(body)
    await partial.prepare(request)
    await partial.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return partial


async def _handle(
    emu: Emulator, request: web.Request, handler: Handler, fault: Fault | None, forced: ForcedError
) -> web.StreamResponse:
    if fault is not None and fault.latency:
        await asyncio.sleep(fault.latency)
    if fault is not None and fault.forces_error:
        raise forced(fault.error(), request)
    # A persistent emulator answers from what every process on its folder wrote so far.
    await emu.sync()
    return await handler(request)


def plumbing(emu: Emulator, forced: ForcedError) -> Middleware:
    """The middleware: log the request, apply a fault, turn errors into the envelope.

    Args:
        emu: The emulator (its request log and faults).
        forced: Completes a fault's forced error for this request (a 2001's bind_url).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = f"req_{secrets.token_hex(8)}"
        request[REQUEST_ID] = request_id
        request[WRITER] = emu.worker_id
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=redact_headers(request.headers),
            body_size=request.content_length or 0,
            host=request.host,
            request_id=request_id,
        )
        emu.requests.append(record)
        fault = emu.faults.take(request.method, request.path)
        if fault is not None:
            request[FAULT] = fault
        try:
            response = await _handle(emu, request, handler, fault, forced)
        except ApiError as exc:
            response = _error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            error = ApiError(exc.status, exc.reason.lower(), status=exc.status, headers=allow)
            response = _error_response(error)
        except ConnectionError:
            # The client went away mid-request (a cancelled upload): nobody to answer, and not
            # an emulator bug. aiohttp drops the connection quietly; the log keeps status None.
            raise
        except Exception as exc:
            response = _unexpected(emu, request, exc)
        if fault is not None and fault.drop and isinstance(response, web.Response):
            response = await drop_response(request, response)
        record.status = response.status
        record.body_size = max(record.body_size, request.content.total_bytes)
        return response

    return middleware


def _unexpected(emu: Emulator, request: web.Request, exc: Exception) -> web.Response:
    """The reply to an error no handler turned into one of the API's."""
    if is_disk_full(exc):
        # Any write may meet a full disk (a folder made, the database's commit): HTTP 507,
        # naming the folder, and nothing in the log (it is the disk's state, not a bug).
        full = DiskFull.of(exc, emu.data_dir)
        logger.info("%s %s: %s", request.method, request.path, full)
        return _error_response(full.reply())
    # A bug in the emulator: logged with its traceback, and named in the envelope rather than
    # a bare 500 page. Nothing in it says to retry: the same request would meet the same bug.
    logger.error("emulator error on %s %s", request.method, request.path, exc_info=exc)
    message = f"emulator error: {type(exc).__name__}: {exc}"
    return _error_response(ApiError(500, message, status=500))
