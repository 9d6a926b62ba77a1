"""Request bodies: gzip decoding and the size limit, before any route sees the body.

The limit applies to the bytes received and again to the bytes after decompression, so a
small gzip bomb is refused as surely as a large upload; nothing of a refused body is kept.
"""

from __future__ import annotations

import zlib
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


class BodyMiddleware:
    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            await self._refuse(
                scope,
                receive,
                send,
                415,
                f"unsupported Content-Encoding {encoding!r}: send gzip or plain bodies",
            )
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if encoding == "gzip":
            decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                body = decoder.decompress(body, self.max_body + 1)
            except zlib.error:
                await self._refuse(scope, receive, send, 400, "the body is not valid gzip")
                return
            if len(body) > self.max_body or decoder.unconsumed_tail:
                await self._too_large(scope, receive, send, decompressed=True)
                return
            if not decoder.eof:
                await self._refuse(scope, receive, send, 400, "the gzip body is truncated")
                return
            if decoder.unused_data:
                await self._refuse(
                    scope, receive, send, 400, "the gzip body has bytes after the end of its stream"
                )
                return
        new_headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"content-encoding", b"content-length")
        ]
        new_headers.append((b"content-length", str(len(body)).encode()))
        scope = dict(scope, headers=new_headers)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, decompressed: bool = False
    ) -> None:
        what = "decompressed body" if decompressed else "request body"
        await self._refuse(
            scope,
            receive,
            send,
            413,
            f"the {what} is larger than this server's limit of {_mib(self.max_body)} "
            "(send smaller batches, or start the server with a larger --max-body)",
        )

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        content: dict[str, Any] = {"detail": detail, "errors": []}
        await JSONResponse(content, status_code=status, headers={"Connection": "close"})(
            scope, receive, send
        )
