"""Plain ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware)."""

from __future__ import annotations

import asyncio
import json
import time
from http import HTTPMethod

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KNOWN_METHODS = frozenset(method.value for method in HTTPMethod)


async def _send_error(send: Send, code: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 for a request body over `max_bytes`, whether it declares its length or streams it
    (chunked); 408 when the body stops arriving: `timeout_s` without a byte while the app
    waits for the rest of it (nginx's client_body_timeout, for a client talking to qa-serve
    directly; uvicorn has no timeout of its own for a request's headers or body)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _send_error(send, 413, self._too_large() if declared.isdigit() else "bad Content-Length")
            return
        received = 0
        complete = False  # the whole body is in: later receives wait for a disconnect, untimed

        async def counted_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                raise _BodyStalled(self.timeout_s) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLarge(self._too_large())
            return message

        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except (_BodyTooLarge, _BodyStalled) as exc:  # raised where no route turned it into a response
            if not started:
                await _send_error(send, exc.status_code, exc.detail, exc.headers)

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"


# HTTPExceptions, so that FastAPI, which reads a route's body itself, answers them as they are
# (any other exception from reading the body becomes its 400 "There was an error parsing the body").
class _BodyTooLarge(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class _BodyStalled(HTTPException):
    def __init__(self, timeout_s: float) -> None:
        # Closed after the answer: a client that stalls must not keep the connection.
        super().__init__(408, f"the request body stopped arriving: nothing for {timeout_s:g} s",
                         headers={"Connection": "close"})


class RecordMetrics:
    """Count requests and time them by route template and method. Both are labels, so neither
    may come from the client as sent: a path is its route's template (ids would explode the
    labels), or "unmatched"; a method outside HTTP's standard ones is "other"."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def tracked_send(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            metrics = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
                metrics.requests.labels(route, method, str(code)).inc()
                metrics.latency.labels(route, method).observe(time.perf_counter() - started)
