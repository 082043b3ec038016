"""A scripted OpenAI-compatible model server over real HTTP, shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.openai_server import OpenAIServer, openai_server


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with openai_server() as srv:
        yield srv


@pytest.fixture
def model(server: OpenAIServer) -> Iterator[OpenAIServer]:
    """The module's server, with no plans and no recorded requests left by other tests."""
    server.reset()
    yield server
    server.reset()
