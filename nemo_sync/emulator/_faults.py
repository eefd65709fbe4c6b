"""Fault injection: forced errors, latency, dropped connections, cut streams, failed renders,
a missing download URL and a crashing agent."""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs

from nemo_sync.emulator._api_errors import DEFAULT_STATUS_MESSAGES, ApiError, format_retry_after

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"})


def _compile_route(route: str) -> tuple[str, re.Pattern[str]]:
    """``"GET /api/state/{sid}/latest"`` -> ("GET", regex). See :meth:`FaultSet.add`."""
    parts = route.strip().split(None, 1)
    if len(parts) == 2 and parts[0].upper() in _METHODS:
        method, path = parts[0].upper(), parts[1].strip()
    elif len(parts) == 1:
        method, path = "*", parts[0]
    else:
        raise ValueError(f"route should look like 'GET /api/credits/balance/simple'; got {route!r}")
    if not path.startswith("/"):
        raise ValueError(f"the route's path must start with '/'; got {route!r}")
    prefix = path.endswith("*")
    if prefix:
        path = path[:-1]
    pieces = re.split(r"(\{[^{}/]+\})", path)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in pieces)
    return method, re.compile(regex + (".*" if prefix else "") + r"\Z")


@attrs.define(eq=False)
class Fault:
    """One injected fault; made by :meth:`FaultSet.add`.

    Attributes:
        route: The route pattern it applies to.
        remaining: How many more requests it affects (``None``: every one).
        hits: How many requests it has affected so far.
    """

    route: str
    method: str = attrs.field(repr=False)
    pattern: re.Pattern[str] = attrs.field(repr=False)
    status: int | None = None
    code: int | None = None
    message: str | None = None
    retry_after: float | None = None
    remaining: int | None = 1
    latency: float | None = None
    drop: bool = False
    sse_cut_after: int | None = None
    render_fail: str | None = None
    omit_output_url: bool = False
    agent_crash: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to the request."""
        return (self.method in ("*", method)) and self.pattern.match(path) is not None

    @property
    def forces_error(self) -> bool:
        """Whether the fault answers with an error instead of running the route."""
        return (
            self.status is not None
            or self.code is not None
            or (self.retry_after is not None and not self.drop and self.sse_cut_after is None)
        )

    def error(self) -> ApiError:
        """The forced error reply."""
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = format_retry_after(self.retry_after)
        status = self.status
        if status is None and self.code is None:
            status = 429  # only retry_after was given: a rate limit is what carries one
        code = self.code if self.code is not None else status
        assert code is not None
        message = self.message or ""
        if not message and self.code is None and status is not None:
            message = DEFAULT_STATUS_MESSAGES.get(status, f"HTTP {status}")
        return ApiError(code, message, status=status, headers=headers)


class FaultSet:
    """The faults waiting to hit requests (``emu.faults``).

    Faults apply in the order they were added; the first one that matches a request is used
    (and counts one of its ``times``).
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        route: str,
        *,
        status: int | None = None,
        code: int | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        times: int | None = 1,
        latency: float | None = None,
        drop: bool = False,
        sse_cut_after: int | None = None,
        render_fail: str | bool | None = None,
        omit_output_url: bool = False,
        agent_crash: str | bool | None = None,
    ) -> Fault:
        """Inject a fault into the requests that match ``route``.

        Args:
            route: ``"METHOD /path"`` (or just ``"/path"`` for any method). ``{name}`` matches
                one path segment and a trailing ``*`` matches any rest, e.g.
                ``"GET /api/state/nemo_agent/me/{session_id}/latest"`` or ``"POST /api/upload*"``.
            status: Answer with this HTTP status (a JSON envelope with ``code`` = status unless
                ``code`` is given).
            code: Answer with this API code (at its usual HTTP status unless ``status`` is
                given: 1001 -> 401, 1002 -> 404, 2001 -> 200, 4001 -> 400, 4002 -> 413).
            message: The error message (a default for the code/status otherwise).
            retry_after: Send ``Retry-After`` with the error (alone, it means a 429).
            times: How many requests it affects; ``None`` for all of them until removed.
            latency: Seconds to wait before handling the request (or before the error).
            drop: Handle the request, send the headers and part of the body, then close the
                connection. The request's effects stay (a session is made, a turn is run).
            sse_cut_after: On ``/run_sse``: close the stream abruptly after this many events.
                The turn still completes on the server, so the state shows its edit.
            render_fail: On ``POST /api/render/proxy/lambda``: the job is accepted and then
                fails with this message (``True`` for a default one).
            omit_output_url: On ``GET /api/render/proxy/lambda/{id}``: a completed job comes
                without ``outputUrl`` [R] (``output`` without ``url`` [V]), so a client must use
                the download fallback ``GET /api/render/proxy/{id}/download``. (To make the URL
                itself fail, add ``status=403``, ``404`` or ``410`` on
                ``"GET /downloads/{name}"``.)
            agent_crash: On ``/run_sse``: the agent raises ``RuntimeError`` with this message
                (``True`` for a default one) after the first heartbeat; the stream carries
                ADK's own error event ``{"error": ..., "error_details": ...}`` and ends with
                HTTP 200, as google-adk 2.13 does. The turn changes nothing.

        Returns:
            The fault (see ``hits`` and ``remaining``); remove it with :meth:`remove`.

        Raises:
            ValueError: for a malformed route or option.
        """
        method, pattern = _compile_route(route)
        if times is not None and times < 1:
            raise ValueError(f"times must be 1 or more (or None for always); got {times}")
        if sse_cut_after is not None and sse_cut_after < 0:
            raise ValueError(f"sse_cut_after must be 0 or more; got {sse_cut_after}")
        if latency is not None and latency < 0:
            raise ValueError(f"latency must be 0 or more seconds; got {latency}")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status; got {status}")
        fail = "render failed (injected fault)" if render_fail is True else render_fail or None
        crash = "the agent crashed (injected fault)" if agent_crash is True else agent_crash or None
        fault = Fault(
            route=route,
            method=method,
            pattern=pattern,
            status=status,
            code=code,
            message=message,
            retry_after=retry_after,
            remaining=times,
            latency=latency,
            drop=drop,
            sse_cut_after=sse_cut_after,
            render_fail=fail if isinstance(fail, str) else None,
            omit_output_url=omit_output_url,
            agent_crash=crash if isinstance(crash, str) else None,
        )
        effects = (
            latency is not None,
            drop,
            sse_cut_after is not None,
            fault.render_fail,
            omit_output_url,
            fault.agent_crash,
        )
        if not fault.forces_error and not any(effects):
            raise ValueError(
                "a fault needs an effect: status, code, retry_after, latency, drop, "
                "sse_cut_after, render_fail, omit_output_url or agent_crash"
            )
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any, counting it as used."""
        if not self._faults:
            return None
        for fault in self._faults:
            if fault.matches(method, path):
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def remove(self, fault: Fault) -> None:
        """Stop a fault (no error when it is already used up)."""
        if fault in self._faults:
            self._faults.remove(fault)

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)

    def __iter__(self) -> Iterator[Fault]:
        return iter(list(self._faults))

    def __repr__(self) -> str:
        return f"FaultSet({[f.route for f in self._faults]!r})"
