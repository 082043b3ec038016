r"""One rule for the text of every request: it must be valid Unicode.

A JSON string may escape half of a surrogate pair alone (``"\ud800"`` in JSON), and a body
may hold bytes that are not UTF-8. Neither is text: the tokenizer, SQLite and the
JSON encoder each fail on them in their own way, deep inside a run. So every route
checks its request once, before it runs (an app-wide dependency), and answers 400
``invalid_text`` in the API's error shape, naming where the bad text is. A JSON body
that is not UTF-8 gets the same answer from :mod:`app.server.errors`.

Form fields and file names follow Starlette's decoding (not UTF-8: read as Latin-1;
percent-escapes that are not UTF-8: U+FFFD), so they hold no surrogates but are
checked all the same, as are the path and the query.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from app.server.errors import ApiError

__all__ = ["INVALID_TEXT", "check_text", "lone_surrogate"]

INVALID_TEXT = "invalid_text"
"""The error code of a request whose text is not valid Unicode."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(value: Any, where: str = "body") -> str | None:
    """Where in ``value`` (a parsed JSON document) a string holds a lone surrogate, if any.

    Args:
        value: A JSON value: dicts, lists, strings, numbers, booleans, ``None``.
        where: The location of ``value``, dotted, as validation errors name it.

    Returns:
        The location of the first string (or key) with a surrogate, or ``None``.
    """
    if isinstance(value, str):
        return where if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _SURROGATE.search(key):
                return where
            found = lone_surrogate(item, f"{where}.{key}" if where != "body" else str(key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate(item, f"{where}.{index}" if where != "body" else str(index))
            if found is not None:
                return found
    return None


def _refuse(where: str) -> ApiError:
    return ApiError(
        400,
        f"{where}: the text holds a lone surrogate (U+D800 to U+DFFF); send valid Unicode",
        INVALID_TEXT,
    )


def _content_type(request: Request) -> tuple[str, str]:
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    return message.get_content_maintype(), message.get_content_subtype()


async def check_text(request: Request) -> None:
    """Refuse a request whose path, query, JSON body or form holds a lone surrogate.

    Runs as a dependency of every route, after FastAPI has read (and cached) the
    body, so nothing is parsed twice.

    Raises:
        ApiError: 400 ``invalid_text``, naming the field.
    """
    for name, value in request.path_params.items():
        if isinstance(value, str) and _SURROGATE.search(value):
            raise _refuse(name)
    for name, value in request.query_params.multi_items():
        if _SURROGATE.search(name) or _SURROGATE.search(value):
            raise _refuse(name)
    if request.method not in {"POST", "PUT", "PATCH", "DELETE"}:
        return
    kind, subtype = _content_type(request)
    if kind == "multipart" or (kind, subtype) == ("application", "x-www-form-urlencoded"):
        form = await request.form()
        for name, item in form.multi_items():
            text = (item.filename or "") if isinstance(item, UploadFile) else item
            if _SURROGATE.search(name) or _SURROGATE.search(text):
                raise _refuse(name)
        return
    if not await request.body():
        return
    try:
        document = await request.json()
    except ValueError:  # not JSON: the route's own validation answers
        return
    found = lone_surrogate(document)
    if found is not None:
        raise _refuse(found)
