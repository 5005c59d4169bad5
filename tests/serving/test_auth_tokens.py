"""With --token, only the exact token in the right place opens the API: every route and the live WebSocket.

A check that lets a wrong token through is invisible to tests that only try no token and the right
one. Here each protected route, found in the app itself (a route added later is covered without
editing this file), is called with wrong, empty, truncated, extended, wrongly cased and misplaced
tokens, and must answer 401; the WebSocket must close with 1008 before it reads anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TOKEN = "s3cret"
JOB = "0" * 32


def flattened(routes: list) -> list:
    """The routes of the app and of the routers it includes (FastAPI 0.16x wraps an included router in one
    entry that keeps the router as `original_router`; older versions copied its routes in)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out += flattened(inner.routes) if inner is not None else [route]
    return out


def protected_routes() -> tuple[list[tuple[str, str]], list[str]]:
    """([(method, path)], [websocket paths]) of the app's /api routes, path parameters filled in."""
    try:
        from fastapi.routing import APIRoute, APIWebSocketRoute

        from maskdet.serving.app import create_app
        from maskdet.serving.service import ServeSettings
    except ImportError:  # the server's packages are missing: tests/serving/conftest.py skips with what to install
        return [], []
    app = create_app(ServeSettings(weights=Path("unused.onnx"), results_dir=Path("unused")))  # routes only: no model loaded
    fill = {"job_id": JOB, "name": "predictions.csv"}
    http, ws = [], []
    for route in flattened(app.routes):
        path = getattr(route, "path", "")
        if not path.startswith("/api"):
            continue
        concrete = path.format(**fill)
        if isinstance(route, APIWebSocketRoute):
            ws.append(concrete)
        elif isinstance(route, APIRoute):
            http += [(method, concrete) for method in sorted(route.methods - {"HEAD", "OPTIONS"})]
    return http, ws


HTTP_ROUTES, WS_ROUTES = protected_routes()

# name -> (headers, query string, cookies): none of them carries the token the right way.
WRONG_HTTP = {
    "no token": ({}, "", {}),
    "empty header": ({"Authorization": ""}, "", {}),
    "scheme only": ({"Authorization": "Bearer"}, "", {}),
    "empty bearer": ({"Authorization": "Bearer "}, "", {}),
    "wrong token": ({"Authorization": "Bearer wrong"}, "", {}),
    "truncated token": ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "", {}),
    "extended token": ({"Authorization": f"Bearer {TOKEN}x"}, "", {}),
    "token in another case": ({"Authorization": f"Bearer {TOKEN.upper()}"}, "", {}),
    "no scheme": ({"Authorization": TOKEN}, "", {}),
    "basic scheme": ({"Authorization": f"Basic {TOKEN}"}, "", {}),
    "token scheme": ({"Authorization": f"Token {TOKEN}"}, "", {}),
    "another header": ({"X-Token": TOKEN, "X-Api-Key": TOKEN}, "", {}),
    "in the query": ({}, f"?token={TOKEN}", {}),
    "in a cookie": ({}, "", {"token": TOKEN, "Authorization": f"Bearer {TOKEN}"}),
}

# The WebSocket takes the token as ?token= (browsers cannot set its headers); anything else is refused.
WRONG_WS = {
    "no token": "",
    "empty token": "?token=",
    "wrong token": "?token=wrong",
    "truncated token": f"?token={TOKEN[:-1]}",
    "extended token": f"?token={TOKEN}x",
    "token in another case": f"?token={TOKEN.upper()}",
    "bearer in the query": f"?token=Bearer%20{TOKEN}",
    "another parameter name": f"?access_token={TOKEN}",
    "parameter name in another case": f"?Token={TOKEN}",
}


def call(client, method: str, path: str, headers: dict | None = None, cookies: dict | None = None):
    client.cookies.clear()
    for name, value in (cookies or {}).items():
        client.cookies.set(name, value)
    return client.request(method, path, headers=headers or {})


@pytest.fixture
def locked(make_client):
    return make_client(token=TOKEN)


def test_the_routes_under_test_are_the_apis_routes():
    # The enumeration itself must work, or every test below would pass on nothing.
    assert {("GET", "/api/health"), ("POST", "/api/detect"), ("POST", "/api/videos"), ("GET", f"/api/videos/{JOB}"),
            ("GET", f"/api/files/{JOB}/predictions.csv")} <= set(HTTP_ROUTES)
    assert "/api/live" in WS_ROUTES


@pytest.mark.parametrize("how", WRONG_HTTP)
@pytest.mark.parametrize("method, path", HTTP_ROUTES)
def test_every_api_route_refuses_a_missing_wrong_or_misplaced_token(locked, method, path, how):
    headers, query, cookies = WRONG_HTTP[how]
    response = call(locked, method, path + query, headers, cookies)
    assert response.status_code == 401, (how, response.status_code, response.text)
    assert "token" in response.json()["error"]
    assert response.headers["www-authenticate"] == "Bearer"


# The scheme is case-insensitive and may be followed by more than one space (RFC 7235's 1*SP).
RIGHT = [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer  {TOKEN}"]


@pytest.mark.parametrize("authorization", RIGHT)
@pytest.mark.parametrize("method, path", HTTP_ROUTES)
def test_every_api_route_lets_the_right_token_through(locked, method, path, authorization):
    # Past the check, each route answers for itself (200, or 400/404 for the empty request): never 401.
    response = call(locked, method, path, {"Authorization": authorization})
    assert response.status_code != 401, response.text
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("how", WRONG_WS)
@pytest.mark.parametrize("path", WS_ROUTES)
def test_the_live_websocket_refuses_a_missing_wrong_or_misplaced_token(locked, path, how):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed:
        with locked.websocket_connect(path + WRONG_WS[how]) as ws:
            ws.send_bytes(b"\xff\xd8\xffnot really")  # a frame it must never answer
            ws.receive_json()
    assert closed.value.code == 1008, how


@pytest.mark.parametrize("path", WS_ROUTES)
def test_the_live_websocket_opens_with_the_right_token(locked, path):
    with locked.websocket_connect(f"{path}?token={TOKEN}") as ws:
        ws.send_bytes(b"\xff\xd8\xffnot really")
        assert "corrupt" in ws.receive_json()["error"]  # accepted, and answering


def test_without_a_token_setting_the_api_is_open(client):
    assert client.get("/api/health").status_code == 200
    with client.websocket_connect("/api/live") as ws:
        ws.send_bytes(b"\xff\xd8\xffnot really")
        assert "corrupt" in ws.receive_json()["error"]
