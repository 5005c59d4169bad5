"""The --token check, for the HTTP API (an `Authorization: Bearer` header) and the live WebSocket (?token=).

Kept apart from the routes so that the one comparison every request goes through is small enough to
read at a glance, and is compared in constant time (a timing difference would leak the token).
"""

from __future__ import annotations

import secrets


def token_matches(given: str | None, token: str | None) -> bool:
    """Whether `given` is exactly the server's token; with no token set, everyone is let in."""
    if token is None:
        return True
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case), else None."""
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def token_refusal(token: str | None, authorization: str) -> str | None:
    """Why an Authorization header does not carry `token` (None: it does, or the server has none).
    The header only, never the query (a token in a URL ends up in logs)."""
    if token_matches(bearer_token(authorization), token):
        return None
    return ("missing or wrong token: send the header 'Authorization: Bearer <token>'" if authorization
            else "this server needs a token: send the header 'Authorization: Bearer <token>'")
