"""The Elasticsearch client retries with jittered exponential backoff on the pinned client."""

from __future__ import annotations

from app.retrieval.remote.elastic import connect


def test_connect_sets_the_transports_backoff() -> None:
    client = connect("http://127.0.0.1:9")  # nothing is sent until a request
    try:
        assert (client.transport.retry_backoff_base, client.transport.retry_backoff_cap) == (
            0.5,
            30.0,
        )
    finally:
        client.close()


def test_backoff_can_be_turned_off_for_tests() -> None:
    client = connect("http://127.0.0.1:9", retry_backoff_base=0, max_retries=1)
    try:
        assert client.transport.retry_backoff_base == 0
    finally:
        client.close()
