"""End users behind one API key: a front end (Open WebUI, a company portal) names who asks.

A key with the ``end_users`` scope may send OpenAI's ``user`` field, or a header of
``server.end_user_headers`` (``X-Ragent-User``, Open WebUI's ``X-OpenWebUI-User-Id``),
and the request then acts for that end user: memories, notes, threads, streams, jobs and
rate limits are theirs. The end user's id is ``<key user>/<end user>``: ``/`` never
occurs in a key's user id, so an end user can never be mistaken for a key's own user,
and stays within the key's tenant with the key's ACL groups (an end user gains none).

A key without the scope that names an end user other than its own user gets a 400:
acting for someone else is refused, never silently ignored (that was how one person
got another's memories). Naming the key's own user is accepted, as it changes nothing.
"""

from __future__ import annotations

import dataclasses
from email.message import Message
from typing import Any

from fastapi import Request

from app.server.api_keys import validate_identity
from app.server.auth import Principal
from app.server.errors import ApiError

__all__ = ["END_USERS", "acting_for", "end_user_of"]

END_USERS = "end_users"
"""The scope that lets a key act for the end users its requests name."""


async def _body_user(request: Request) -> tuple[Any, bool]:
    """Return the JSON body's ``user`` and whether it was given (FastAPI parsed it already)."""
    if request.method not in {"POST", "PUT", "PATCH"}:
        return None, False
    content_type = Message()
    content_type["content-type"] = request.headers.get("content-type", "")
    subtype = content_type.get_content_subtype()
    if content_type.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        return None, False
    try:
        body = await request.json()  # cached by Starlette: no second parse for a body route
    except ValueError:  # not JSON: the route answers that itself
        return None, False
    if not isinstance(body, dict) or body.get("user") in (None, ""):
        return None, False
    return body["user"], True


def _header_user(request: Request, headers: list[str]) -> tuple[str, str] | None:
    for name in headers:
        value = request.headers.get(name)
        if value:
            return name, value
    return None


async def end_user_of(request: Request, headers: list[str]) -> tuple[str, str] | None:
    """Return ``(where, end user)`` a request names, or None when it names none.

    ``where`` is ``user`` (the body field) or the header's name.

    Raises:
        ApiError: 400 when the value is not a valid id, or the body and a header differ.
    """
    value, given = await _body_user(request)
    header = _header_user(request, headers)
    if not given and header is None:
        return None
    if given and not isinstance(value, str):
        raise _invalid("user", "user must be a string")
    named = ("user", str(value)) if given else header
    assert named is not None
    if given and header is not None and header[1] != value:
        raise _invalid("user", f"user and the {header[0]} header name different end users")
    try:
        validate_identity("user", named[1])
    except ValueError:
        raise _invalid(
            named[0],
            f"{named[0]}: an end user id is 1 to 128 letters, digits or _.@+- "
            "(starting with a letter or digit)",
        ) from None
    return named


def _invalid(param: str, message: str) -> ApiError:
    return ApiError(400, message, "invalid_user", kind="invalid_request_error", param=param)


def acting_for(principal: Principal, named: tuple[str, str] | None) -> Principal:
    """Return the principal a request acts as: the key's, or one of its end users.

    Raises:
        ApiError: 400 ``end_users_not_allowed`` when a key without the ``end_users``
            scope names an end user other than its own user.
    """
    if named is None:
        return principal
    where, end_user = named
    if END_USERS not in principal.scopes:
        if end_user == principal.user_id:
            return principal
        raise ApiError(
            400,
            f"{where}: this API key may not act for end users; leave it out, or use a key "
            f"with the {END_USERS!r} scope (ragent keys create --scopes chat,{END_USERS})",
            "end_users_not_allowed",
            kind="invalid_request_error",
            param=where,
        )
    return dataclasses.replace(
        principal, user_id=f"{principal.user_id}/{end_user}", end_user=end_user
    )
