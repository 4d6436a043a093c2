"""The HTTP service: ``GET /health``, ``POST /recommend``, ``POST /items`` (API key), and the
OpenAPI schema at ``/openapi.json`` (FastAPI).

Every bad request is a 4xx with a one-line ``detail``: 400 for values outside what is
accepted, 401 without an API key, 403 with a wrong one (or when adding is disabled because
no key is configured), 404 for unknown ids, 409 for an item id that exists, 413 for a body
over the size limit, 422 for a body that does not match the schema. Sizes are bounded: the
body (``max_body_bytes``), ``k``, the number of query, excluded and added items.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (real-time retrieval with new items
    entering without retraining).
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clusterneg.errors import ClusternegError
from clusterneg.serve.new_items import MAX_ID_CHARS, MAX_TEXT_CHARS, NewItem
from clusterneg.serve.retriever import (
    MAX_ADD,
    MAX_K,
    MAX_QUERY_ITEMS,
    DuplicateItemError,
    Retriever,
    UnknownIdError,
)

API_KEY_ENV = "CLUSTERNEG_API_KEY"
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_VECTOR = 8192

ItemId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


class RecommendRequest(BaseModel):
    """A user id, or the ids of recently consumed items (not both)."""

    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(None, max_length=MAX_ID_CHARS, description="a known user id")
    items: list[ItemId] | None = Field(None, max_length=MAX_QUERY_ITEMS,
                                       description="recent item ids (instead of a user)")
    k: int = Field(20, ge=1, le=MAX_K, description="how many items to return")
    exclude: list[ItemId] = Field(default_factory=list, max_length=MAX_QUERY_ITEMS,
                                  description="item ids never to return")

    @model_validator(mode="after")
    def _one_query(self) -> RecommendRequest:
        if (self.user is None) == (not self.items):
            raise ValueError("give exactly one of 'user' or a non-empty 'items'")
        return self


class Recommended(BaseModel):
    item_id: str
    title: str
    score: float
    cluster: int | None
    cluster_name: str | None


class RecommendResponse(BaseModel):
    items: list[Recommended]


class ItemIn(BaseModel):
    """A new item: text (or catalog text fields such as ``title``), or a raw vector."""

    model_config = ConfigDict(extra="forbid")
    item_id: ItemId
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    fields: dict[Annotated[str, Field(max_length=100)],
                 Annotated[str, Field(max_length=MAX_TEXT_CHARS)]] = Field(
        default_factory=dict, max_length=50)
    vector: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        None, min_length=1, max_length=MAX_VECTOR)


class AddItemsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ItemIn] = Field(..., min_length=1, max_length=MAX_ADD)


class AddedOut(BaseModel):
    item_id: str
    index: int
    cluster: int | None
    cluster_name: str | None


class AddItemsResponse(BaseModel):
    added: list[AddedOut]


class Health(BaseModel):
    status: str
    items: int
    added_items: int
    users: int
    index: str
    index_size: int
    pool_filled: int | None


def create_app(retriever: Retriever, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The FastAPI app over ``retriever``; ``api_key`` None reads ``$CLUSTERNEG_API_KEY``
    (adding items is refused with 403 when neither is set)."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    app = FastAPI(title="clusterneg", version="1",
                  description="Two-tower retrieval with real-time new items.")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.exception_handler(ClusternegError)
    async def _user_error(request: Request, exc: ClusternegError) -> JSONResponse:
        status = (404 if isinstance(exc, UnknownIdError) else
                  409 if isinstance(exc, DuplicateItemError) else 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # only location, message and type: echoing the input back could hold NaN or a huge
        # body, which would turn a 422 into a failure to serialise it
        detail = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    # recommend and health take milliseconds: they run on the event loop (no thread hop);
    # adding items may run an LLM encoder, so it stays in the thread pool
    @app.get("/health", response_model=Health)
    async def health() -> dict[str, Any]:
        return retriever.health()

    @app.post("/recommend", response_model=RecommendResponse,
              responses={400: {}, 404: {}, 413: {}})
    async def recommend(req: RecommendRequest) -> dict[str, Any]:
        recs = retriever.recommend(req.user, req.items, req.k, req.exclude)
        return {"items": [r.__dict__ for r in recs]}

    @app.post("/items", response_model=AddItemsResponse,
              responses={400: {}, 401: {}, 403: {}, 409: {}, 413: {}})
    def add_items(req: AddItemsRequest,
                  x_api_key: str | None = Header(None, max_length=256)) -> dict[str, Any]:
        check_key(key, x_api_key)
        items = [NewItem.from_mapping({**it.fields, "item_id": it.item_id, "text": it.text,
                                       "vector": it.vector}, "<request>", n)
                 for n, it in enumerate(req.items, start=1)]
        return {"added": [a.__dict__ for a in retriever.add_items(items)]}

    return app


def check_key(expected: str | None, given: str | None) -> None:
    """401 without a key, 403 with a wrong one or when no key is configured."""
    if expected is None:
        raise HTTPException(403, f"adding items is disabled: start the service with "
                                 f"{API_KEY_ENV} set")
    if not given:
        raise HTTPException(401, "missing X-API-Key header", {"WWW-Authenticate": "API-Key"})
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "wrong API key")


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (by header, or as it streams)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    body = ('{"detail":"request body over ' + str(limit) + ' bytes"}').encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
