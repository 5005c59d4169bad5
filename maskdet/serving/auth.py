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
