"""The HTTP service through FastAPI's TestClient: every bad request is a 4xx with a clear
``detail``, never a 500; new items are retrievable as soon as POST /items returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clusterneg.serve import Retriever
from clusterneg.serve.app import create_app
from serve_fixtures import TopicEncoder

KEY = "s3cret"
SPACE = {"item_id": "new-space", "fields": {"title": "Space Opera number 99",
                                            "genre": "space opera"}}


@pytest.fixture
def client(run_dir: Path) -> TestClient:
    return TestClient(create_app(Retriever.open(run_dir, encoder=TopicEncoder()), api_key=KEY,
                                 max_body_bytes=64 * 1024), raise_server_exceptions=False)


def test_health_and_schema(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["items"] == 50 and health["users"] == 60
    schema = client.get("/openapi.json").json()
    assert {"/health", "/recommend", "/items"} <= set(schema["paths"])
    assert schema["components"]["schemas"]["RecommendRequest"]["properties"]["k"]["maximum"]


def test_recommend_by_user_and_by_items(client: TestClient) -> None:
    res = client.post("/recommend", json={"user": "u0", "k": 5})
    assert res.status_code == 200
    items = res.json()["items"]
    assert len(items) == 5 and all({"item_id", "title", "score", "cluster"} <= set(x)
                                   for x in items)
    scores = [x["score"] for x in items]
    assert scores == sorted(scores, reverse=True)
    res = client.post("/recommend", json={"items": ["i0", "i5"], "k": 3, "exclude": ["i10"]})
    assert res.status_code == 200
    got = {x["item_id"] for x in res.json()["items"]}
    assert len(got) == 3 and not got & {"i0", "i5", "i10"}


@pytest.mark.parametrize("body,status,detail", [
    ({"user": "nobody"}, 404, "unknown user id 'nobody'"),
    ({"items": ["zzz"]}, 404, "unknown item id 'zzz'"),
    ({"user": "u0", "exclude": ["zzz"]}, 404, "unknown item id 'zzz'"),
    ({}, 422, "exactly one"),
    ({"user": "u0", "items": ["i1"]}, 422, "exactly one"),
    ({"user": "u0", "k": 0}, 422, "greater than or equal to 1"),
    ({"user": "u0", "k": 100000}, 422, "less than or equal to 1000"),
    ({"user": "u0", "k": "many"}, 422, "integer"),
    ({"user": "u0", "colour": "red"}, 422, "Extra inputs"),
    ({"items": []}, 422, "exactly one"),
    ([1, 2], 422, "dictionary"),
])
def test_bad_recommend_requests_are_4xx(client: TestClient, body, status: int,
                                        detail: str) -> None:
    res = client.post("/recommend", json=body)
    assert res.status_code == status
    assert detail in json.dumps(res.json()["detail"])


def test_malformed_and_oversized_bodies(client: TestClient) -> None:
    bad = client.post("/recommend", content=b"{not json",
                      headers={"content-type": "application/json"})
    assert bad.status_code == 422
    big = client.post("/recommend", json={"items": ["i1"] * 20000})
    assert big.status_code == 413 and "bytes" in big.json()["detail"]


def test_items_need_the_key(client: TestClient, run_dir: Path) -> None:
    body = {"items": [SPACE]}
    assert client.post("/items", json=body).status_code == 401
    assert client.post("/items", json=body, headers={"X-API-Key": "nope"}).status_code == 403
    off = TestClient(create_app(Retriever.open(run_dir), api_key=None))
    res = off.post("/items", json=body, headers={"X-API-Key": KEY})
    assert res.status_code == 403 and "CLUSTERNEG_API_KEY" in res.json()["detail"]


def test_added_item_is_served_at_once_and_dupes_conflict(client: TestClient) -> None:
    res = client.post("/items", json={"items": [SPACE]}, headers={"X-API-Key": KEY})
    assert res.status_code == 200
    (added,) = res.json()["added"]
    assert added["item_id"] == "new-space" and added["index"] == 50
    top = client.post("/recommend", json={"user": "u5", "k": 1}).json()["items"]
    assert top[0]["item_id"] == "new-space"
    assert client.get("/health").json()["added_items"] == 1
    again = client.post("/items", json={"items": [SPACE]}, headers={"X-API-Key": KEY})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


@pytest.mark.parametrize("items,status,detail", [
    ([{"item_id": "v", "vector": [1.0, 2.0]}], 400, "16-d vector"),
    ([{"item_id": "e"}], 400, "needs 'text'"),
    ([{"item_id": ""}], 422, "at least 1 character"),
    ([], 422, "at least 1 item"),
    ([{"item_id": "x", "text": "jazz", "price": 3}], 422, "Extra inputs"),
    ([{"item_id": "d", "text": "a"}, {"item_id": "d", "text": "b"}], 409, "repeat"),
])
def test_bad_item_requests_are_4xx(client: TestClient, items, status: int, detail: str) -> None:
    res = client.post("/items", json={"items": items}, headers={"X-API-Key": KEY})
    assert res.status_code == status
    assert detail in json.dumps(res.json()["detail"])


def test_nan_vectors_are_refused(client: TestClient) -> None:
    raw = b'{"items": [{"item_id": "n", "vector": [NaN, 1.0]}]}'
    res = client.post("/items", content=raw, headers={"X-API-Key": KEY,
                                                      "content-type": "application/json"})
    assert res.status_code == 422
