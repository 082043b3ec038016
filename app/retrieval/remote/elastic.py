"""Elasticsearch keyword index: BM25 with an explicit analyzer, filters inside the query.

Mapping, documents and queries live in :mod:`app.retrieval.remote.elastic_schema` (the ACL marker
and document ids are explained there).

Retries: transport-level (connection errors, timeouts, HTTP 429/502/503/504) with jittered
exponential backoff in the client (:func:`connect`), plus per-item retries of 429-rejected
bulk items in :func:`elasticsearch.helpers.bulk`.

Deletes are searches plus bulk deletes, not ``_delete_by_query``: that API lives in the
reindex module, which not every distribution has (the integ-test one the tests run lacks it),
and a document's chunks are few. Each delete names the ``_seq_no`` and ``_primary_term`` the
search saw, so a chunk rewritten in between is kept, as ``conflicts=proceed`` would keep it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from importlib.metadata import version as installed_version
from typing import Any, Literal

from elastic_transport import Transport
from elasticsearch import ApiError, BadRequestError, Elasticsearch, TransportError
from elasticsearch.helpers import bulk

from app.retrieval.remote.commits import begin_marker, visible_hits
from app.retrieval.remote.elastic_commits import ElasticCommits
from app.retrieval.remote.elastic_schema import (
    build_query,
    chunk_to_doc,
    doc_to_chunk,
    document_id,
    document_query,
    filter_clauses,
    index_mapping,
)
from app.retrieval.types import Chunk, Hit, SearchFilter
from app.settings import SettingsError

__all__ = ["ElasticKeywordIndex", "IncompatibleServerError", "Refresh", "connect"]

_WORD = re.compile(r"\w", re.UNICODE)
_RETRY_STATUS = (429, 502, 503, 504)
Refresh = bool | Literal["wait_for"]


def connect(
    url: str,
    *,
    api_key: str | None = None,
    max_retries: int = 5,
    retry_backoff_base: float = 0.5,
    retry_backoff_cap: float = 30.0,
    **overrides: Any,
) -> Elasticsearch:
    """Build a client that retries transient failures with jittered exponential backoff.

    Args:
        url: The cluster address, e.g. ``http://localhost:9200``.
        api_key: An API key, when the cluster requires one.
        max_retries: How many times one request is retried.
        retry_backoff_base: The backoff's base delay in seconds (0: retry at once).
        retry_backoff_cap: The longest delay between two tries, in seconds.
        **overrides: Other ``Elasticsearch`` arguments (TLS, timeouts); they win.
    """
    options: dict[str, Any] = {
        "api_key": api_key,
        "request_timeout": 30,
        "retry_on_timeout": True,
        "max_retries": max_retries,
        "retry_on_status": _RETRY_STATUS,
        "transport_class": _backoff_transport(retry_backoff_base, retry_backoff_cap),
    }
    return Elasticsearch(url, **(options | overrides))


def _backoff_transport(base: float, cap: float) -> type[Transport]:
    """elastic-transport's ``Transport`` with jittered exponential backoff between retries.

    The transport has the setting (off by default), but elasticsearch-py 9.2, pinned for
    its server range, does not pass it through.
    """

    class BackoffTransport(Transport):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("retry_backoff_base", base)
            kwargs.setdefault("retry_backoff_cap", cap)
            super().__init__(*args, **kwargs)

    return BackoffTransport


def _error_type(err: BadRequestError) -> str:
    body = err.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("type", ""))
    return str(err.message)


class IncompatibleServerError(SettingsError):
    """The cluster refuses this client's requests: it is not an Elasticsearch 9."""


# The media type Elasticsearch 8 and 9 both accept, so the version can be asked for.
_V8_JSON = "application/vnd.elasticsearch+json; compatible-with=8"


def _server_version(client: Elasticsearch) -> str | None:
    """The cluster's version, asked for in a form an 8.x server accepts; None if unknown."""
    try:
        resp = client.perform_request(
            "GET",
            "/_nodes/_local",
            params={"filter_path": "nodes.*.version"},
            headers={"accept": _V8_JSON},
        )
        versions = {str(node["version"]) for node in resp.body["nodes"].values()}
    except (ApiError, TransportError, KeyError, TypeError, AttributeError):
        return None
    return versions.pop() if len(versions) == 1 else None


def _incompatible(client: Elasticsearch, err: BadRequestError) -> IncompatibleServerError:
    """Explain, in one line, a cluster that refused the client's media type."""
    error = err.body.get("error") if isinstance(err.body, dict) else None
    caused_by = error.get("caused_by") if isinstance(error, dict) else None
    cause = str(caused_by.get("reason")) if isinstance(caused_by, dict) else str(err.message)
    urls = ", ".join(str(node.base_url) for node in client.transport.node_pool.all())
    version = _server_version(client)
    server = f"Elasticsearch {version}" if version else "a server"
    refusal = cause.split(". Accept=")[0]  # drop the echo of the header
    return IncompatibleServerError(
        f"{urls} runs {server}, which refuses the requests of elasticsearch-py "
        f"{installed_version('elasticsearch')} ({refusal}): ragent needs Elasticsearch 9.x, "
        "so upgrade the cluster to 9.x (Elasticsearch 8 and older are not supported)"
    )


class ElasticKeywordIndex:
    """A :class:`~app.retrieval.protocols.KeywordIndex` over one Elasticsearch index."""

    def __init__(
        self,
        client: Elasticsearch,
        index: str = "ragent-chunks",
        *,
        refresh: Refresh = "wait_for",
        chunk_size: int = 500,
        shards: int = 1,
        replicas: int = 1,
    ) -> None:
        """Use ``index`` through ``client``, creating it when it does not exist.

        Args:
            client: A client, preferably from :func:`connect`.
            index: The index name.
            refresh: Passed to bulk writes; ``"wait_for"`` makes writes visible to the
                next search (read-your-writes), ``False`` favours ingestion throughput.
            chunk_size: Actions per bulk request.
            shards: Primary shards, used only when the index is created.
            replicas: Replicas, used only when the index is created.
        """
        self._es = client
        self.index = index
        self._refresh = refresh
        self._chunk_size = chunk_size
        self.commits = ElasticCommits(client, index)
        self.ensure_index(shards, replicas)

    @property
    def client(self) -> Elasticsearch:
        """The client this adapter uses (its caller closes it)."""
        return self._es

    def ensure_index(self, shards: int = 1, replicas: int = 1) -> None:
        """Create the index (:func:`index_mapping`) and its commit markers' index unless they exist.

        Raises:
            IncompatibleServerError: The cluster is not Elasticsearch 9 (it refuses every
                request of this client).
        """
        try:
            self._es.indices.create(index=self.index, **index_mapping(shards, replicas))
        except BadRequestError as err:
            kind = _error_type(err)
            if kind == "media_type_header_exception":  # an 8.x server refuses 9.x clients
                raise _incompatible(self._es, err) from None
            if kind != "resource_already_exists_exception":
                raise
        self.commits.ensure(shards, replicas)

    def _actions(self, chunks: Sequence[Chunk], generation: str) -> Iterator[dict[str, Any]]:
        for chunk in chunks:
            yield {
                "_op_type": "index",
                "_index": self.index,
                "_id": document_id(chunk.tenant_id, chunk.chunk_id),
                "_source": chunk_to_doc(chunk, generation),
            }

    def _write(self, chunks: Sequence[Chunk], generation: str, refresh: Refresh) -> None:
        actions = list(self._actions(chunks, generation))  # refuse bad chunks before sending
        bulk(
            self._es,
            actions,
            chunk_size=self._chunk_size,
            max_retries=5,
            initial_backoff=1,
            max_backoff=30,
            raise_on_error=True,
            refresh=refresh,
        )

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        """Index chunks; a chunk with an existing id is overwritten.

        Raises:
            elasticsearch.helpers.BulkIndexError: Some chunks were rejected after retries.
        """
        if chunks:
            self._write(chunks, uuid.uuid4().hex, self._refresh)

    def _pages(
        self, query: dict[str, Any], *, versions: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """Every chunk ``query`` matches, page by page in chunk id order.

        Each hit has its ``_id`` and, as ``sort``, ``[chunk_id]``; with ``versions`` also
        its ``_seq_no`` and ``_primary_term``. A page is asked for once the caller has
        handled the one before.
        """
        if self._refresh is False:  # the search below only sees refreshed documents
            self._es.indices.refresh(index=self.index)
        after: list[Any] | None = None
        while True:
            page = self._es.search(
                index=self.index,
                query=query,
                size=self._chunk_size,
                sort=[{"chunk_id": "asc"}],  # unique within the tenant: a total order
                search_after=after,
                source=False,
                seq_no_primary_term=versions or None,
                track_total_hits=False,
            )["hits"]["hits"]
            if page:
                yield page
            if len(page) < self._chunk_size:
                return
            after = page[-1]["sort"]

    def _delete(self, tenant_id: str, doc_id: str, keep_generation: str | None) -> int:
        query = document_query(tenant_id, doc_id, keep_generation)
        deleted = 0
        for page in self._pages(query, versions=True):
            done, _conflicts = bulk(
                self._es,
                (
                    {
                        "_op_type": "delete",
                        "_index": self.index,
                        "_id": hit["_id"],
                        "if_seq_no": hit["_seq_no"],
                        "if_primary_term": hit["_primary_term"],
                    }
                    for hit in page
                ),
                chunk_size=self._chunk_size,
                max_retries=5,
                initial_backoff=1,
                max_backoff=30,
                ignore_status=(409,),  # changed or gone since the search: not ours to delete
                stats_only=True,
            )
            deleted += done
        if deleted:
            self._es.indices.refresh(index=self.index)
        return deleted

    def _chunk_ids(self, tenant_id: str, doc_id: str) -> list[str]:
        """The ids of every chunk the index holds for the document, visible or not."""
        query = document_query(tenant_id, doc_id, None)
        return [str(hit["sort"][0]) for page in self._pages(query) for hit in page]

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        """Hide the document (empty marker), delete its chunks, then its marker.

        Returns:
            How many chunks were removed.
        """
        self.commits.commit(tenant_id, doc_id, [])
        deleted = self._delete(tenant_id, doc_id, None)
        self.commits.forget(tenant_id, doc_id)
        return deleted

    def begin_replace(self, tenant_id: str, doc_id: str) -> None:
        """Give the document a commit marker unless it has one (:func:`begin_marker`).

        Until :meth:`commit`, readers see what they saw before and nothing written after:
        a new document stays hidden; one written before markers (or by :meth:`upsert`)
        stays visible as it is.
        """
        begin_marker(self.commits, tenant_id, doc_id, lambda: self._chunk_ids(tenant_id, doc_id))

    def write_generation(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], generation: str
    ) -> None:
        """Index a new version's chunks, searchable but hidden by the commit marker.

        Unchanged chunk ids are overwritten in place with the same text.

        Raises:
            ValueError: A chunk belongs to another tenant or document.
        """
        if any(c.tenant_id != tenant_id or c.doc_id != doc_id for c in chunks):
            raise ValueError("every chunk must belong to the document being replaced")
        if chunks:
            self._write(chunks, generation, "wait_for")

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        """Switch the document to exactly ``chunk_ids`` (:mod:`app.retrieval.remote.commits`)."""
        self.commits.commit(tenant_id, doc_id, chunk_ids)

    def delete_stale(self, tenant_id: str, doc_id: str, generation: str) -> int:
        """Delete the document's chunks of any other generation; returns how many."""
        return self._delete(tenant_id, doc_id, generation)

    def replace_document(self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk]) -> int:
        """Replace a document's chunks: readers see the old version, then the new one.

        Elasticsearch has no transaction across documents, so the swap goes through the
        document's commit marker (:mod:`app.retrieval.remote.commits`): the new chunks are
        written with a fresh ``generation`` while hidden, the marker is switched, and the
        chunks of other generations are deleted. If the process or the cluster dies on
        the way, the old version stays what readers see, and leftovers stay hidden until
        the next replace or delete of the document removes them.

        Returns:
            How many stale chunks were removed.

        Raises:
            ValueError: A chunk belongs to another tenant or document.
        """
        generation = uuid.uuid4().hex
        self.begin_replace(tenant_id, doc_id)
        self.write_generation(tenant_id, doc_id, chunks, generation)
        self.commit(tenant_id, doc_id, [c.chunk_id for c in chunks])
        return self.delete_stale(tenant_id, doc_id, generation)

    def search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        """Return the ``k`` best BM25 matches visible to ``flt``, best first."""
        if k <= 0 or not _WORD.search(query):
            return []
        resp = self._es.search(index=self.index, **build_query(query, flt, k))
        hits = [Hit(doc_to_chunk(h["_source"]), float(h["_score"])) for h in resp["hits"]["hits"]]
        return visible_hits(flt.tenant_id, hits, self.commits.committed)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        """Count chunks, optionally only those visible to ``flt``, stopping at ``limit``."""
        query: dict[str, Any] = (
            {"match_all": {}} if flt is None else {"bool": {"filter": filter_clauses(flt)}}
        )
        extra: dict[str, Any] = {} if limit is None else {"terminate_after": limit}
        found = int(self._es.count(index=self.index, query=query, **extra)["count"])
        return found if limit is None else min(found, limit)

    def drop(self) -> None:
        """Delete the whole index and its markers (tests and tear-down)."""
        self._es.options(ignore_status=404).indices.delete(index=self.index)
        self.commits.drop()
