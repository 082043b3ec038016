"""ElasticKeywordIndex driven through the real client against a scripted in-process node.

The node records every HTTP request the client sends (the real serialisation, bulk helper
and retry logic run) and answers from a script, so request order, bodies and retries are
checked without a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elasticsearch import BadRequestError
from elasticsearch.helpers import BulkIndexError

from app.retrieval.protocols import KeywordIndex
from app.retrieval.remote.elastic import ElasticKeywordIndex, IncompatibleServerError, connect
from app.retrieval.remote.elastic_schema import (
    build_query,
    document_id,
    filter_clauses,
    index_mapping,
)
from app.retrieval.types import Chunk, SearchFilter
from app.settings import SettingsError

Reply = tuple[int, dict[str, Any]]


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: Any


@dataclass
class Script:
    requests: list[Request] = field(default_factory=list)
    handler: Callable[[Request], Reply] = lambda r: (200, {"acknowledged": True})


SCRIPT = Script()


class ScriptedNode(BaseNode):
    _CLIENT_META_HTTP_CLIENT = ("scripted", "0")

    def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: Any = None,
        request_timeout: Any = None,
    ) -> NodeApiResponse:  # noqa: E501
        url = urlsplit(target)
        text = (body or b"").decode()
        if url.path.endswith("/_bulk"):
            parsed: Any = [json.loads(line) for line in text.splitlines() if line]
        else:
            parsed = json.loads(text) if text else None
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        request = Request(method, url.path, params, parsed)
        SCRIPT.requests.append(request)
        status, reply = SCRIPT.handler(request)
        meta = ApiResponseMeta(
            status=status,
            http_version="1.1",
            headers=HttpHeaders(
                {"content-type": "application/json", "x-elastic-product": "Elasticsearch"}
            ),
            duration=0.0,
            node=self.config,
        )
        return NodeApiResponse(meta, json.dumps(reply).encode())

    def close(self) -> None:
        pass


def _bulk_ok(request: Request) -> Reply:
    actions = request.body[0::2]
    return 200, {
        "errors": False,
        "took": 1,
        "items": [
            {"index": {"_id": a["index"]["_id"], "status": 201, "result": "created"}}
            for a in actions
        ],
    }


@pytest.fixture(autouse=True)
def script() -> Script:
    SCRIPT.requests.clear()
    SCRIPT.handler = lambda r: (200, {"acknowledged": True})
    return SCRIPT


def _client() -> Any:
    return connect("http://localhost:9200", node_class=ScriptedNode, retry_backoff_base=0)


def _chunk(cid: str, doc: str = "d1", tenant: str = "t1", acl: tuple[str, ...] = ()) -> Chunk:
    return Chunk(cid, doc, tenant, "a.md", f"text {cid}", (0, 5), "h", acl)


def _marker(op: str, doc: str = "d1", tenant: str = "t1") -> str:
    """The path of a request on one document's commit marker (``_doc``, ``_create``)."""
    return f"/idx-commits/{op}/{quote(document_id(tenant, doc), safe='')}"


def _markers(request: Request, committed: dict[str, list[str]]) -> Reply:
    """Answer a marker ``mget`` from ``committed`` (document id -> chunk ids)."""
    docs = []
    for _id in request.body["ids"]:
        doc = _id.split(":", 2)[2]  # document_id(tenant, doc): "<len>:<tenant>:<doc>"
        if doc in committed:
            source = {"doc_id": doc, "chunk_ids": committed[doc]}
            docs.append({"_index": "idx-commits", "_id": _id, "found": True, "_source": source})
        else:
            docs.append({"_index": "idx-commits", "_id": _id, "found": False})
    return 200, {"docs": docs}


EXISTS = {
    "error": {"type": "resource_already_exists_exception", "reason": "exists"},
    "status": 400,
}


def test_index_is_created_once_with_the_mapping(script: Script) -> None:
    assert isinstance(ElasticKeywordIndex(_client(), "idx", replicas=0), KeywordIndex)
    create, create_markers = script.requests
    assert (create.method, create.path) == ("PUT", "/idx")
    assert create.body == index_mapping(replicas=0)
    # The commit markers' index is created with it, on the same shards and replicas.
    assert (create_markers.method, create_markers.path) == ("PUT", "/idx-commits")
    assert create_markers.body["settings"] == {"number_of_shards": 1, "number_of_replicas": 0}
    mapping = create_markers.body["mappings"]
    assert mapping["dynamic"] == "strict"
    assert set(mapping["properties"]) == {"tenant_id", "doc_id", "chunk_ids"}
    assert mapping["properties"]["chunk_ids"]["index"] is False  # read back whole only

    script.requests.clear()
    script.handler = lambda r: (400, EXISTS)
    ElasticKeywordIndex(_client(), "idx")  # idempotent: existing indexes are kept
    assert [r.path for r in script.requests] == ["/idx", "/idx-commits"]

    # An index from before commit markers existed gets its markers' index.
    script.requests.clear()
    script.handler = lambda r: (400, EXISTS) if r.path == "/idx" else (200, {"acknowledged": True})
    ElasticKeywordIndex(_client(), "idx")
    assert [(r.method, r.path) for r in script.requests] == [
        ("PUT", "/idx"),
        ("PUT", "/idx-commits"),
    ]

    bad = {"error": {"type": "mapper_parsing_exception", "reason": "bad"}, "status": 400}
    for failing in ("/idx", "/idx-commits"):
        script.handler = lambda r, f=failing: (400, bad) if r.path == f else (400, EXISTS)
        with pytest.raises(BadRequestError):
            ElasticKeywordIndex(_client(), "idx")


def test_upsert_bulk_indexes_by_tenant_scoped_id(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx")
    script.requests.clear()
    script.handler = _bulk_ok
    index.upsert([_chunk("a"), _chunk("b", tenant="t2", acl=("hr",))])
    (bulk,) = script.requests
    assert bulk.path == "/_bulk" and bulk.params["refresh"] == "wait_for"
    actions, sources = bulk.body[0::2], bulk.body[1::2]
    assert [a["index"]["_id"] for a in actions] == [document_id("t1", "a"), document_id("t2", "b")]
    assert {a["index"]["_index"] for a in actions} == {"idx"}
    assert [s["acl"] for s in sources] == [["__public__"], ["hr"]]


def test_rejected_bulk_items_raise(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx")
    script.handler = lambda r: (
        200,
        {
            "errors": True,
            "took": 1,
            "items": [
                {
                    "index": {
                        "_id": "x",
                        "status": 400,
                        "error": {"type": "mapper_parsing_exception"},
                    }
                }
            ],
        },
    )
    with pytest.raises(BulkIndexError):
        index.upsert([_chunk("a")])
    script.requests.clear()
    with pytest.raises(ValueError, match="reserved"):
        index.upsert([_chunk("a"), _chunk("b", acl=("__public__",))])
    assert script.requests == []  # nothing was sent


def _hits(*ids: str, seq_no: int = 7) -> Reply:
    hits = [
        {"_id": i, "_seq_no": seq_no, "_primary_term": 1, "_score": None, "sort": [i]} for i in ids
    ]
    return 200, {"hits": {"hits": hits}}


def _bulk_deleted(request: Request, conflicts: frozenset[str] = frozenset()) -> Reply:
    def item(_id: str) -> dict[str, Any]:
        if _id in conflicts:
            return {
                "_id": _id,
                "status": 409,
                "error": {"type": "version_conflict_engine_exception"},
            }
        return {"_id": _id, "status": 200, "result": "deleted"}

    items = [{"delete": item(a["delete"]["_id"])} for a in request.body]
    return 200, {"errors": bool(conflicts), "took": 1, "items": items}


def test_replace_writes_new_chunks_before_deleting_stale_ones(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx", refresh=False)
    script.requests.clear()

    def handler(request: Request) -> Reply:
        if request.path == "/idx-commits/_mget":
            return _markers(request, {"d1": ["a", "b", "d"]})  # the committed version
        if request.path == "/_bulk":
            if "delete" in request.body[0]:
                return _bulk_deleted(request)
            return _bulk_ok(request)
        if request.path == "/idx/_search":
            return _hits("1:t1:b", "1:t1:d")
        return 200, {"_shards": {}}

    script.handler = handler
    assert index.replace_document("t1", "d1", [_chunk("a"), _chunk("c")]) == 2
    begin, write, commit, refresh, search, delete, refresh_after = script.requests
    # begin: the document has a marker, which is kept (nothing is written for it).
    assert begin.path == "/idx-commits/_mget"
    assert begin.body == {"ids": [document_id("t1", "d1")]}
    assert write.path == "/_bulk" and write.params["refresh"] == "wait_for"  # searchable first
    generations = {s["generation"] for s in write.body[1::2]}
    assert len(generations) == 1
    # commit: one write switches readers to exactly the new chunks, before any delete.
    assert (commit.method, commit.path) == ("PUT", _marker("_doc"))
    assert commit.body == {"tenant_id": "t1", "doc_id": "d1", "chunk_ids": ["a", "c"]}
    assert refresh.path == "/idx/_refresh"  # earlier writes made with refresh=False too
    assert search.path == "/idx/_search"
    assert search.body["query"]["bool"] == {
        "filter": [{"term": {"tenant_id": "t1"}}, {"term": {"doc_id": "d1"}}],
        "must_not": [{"term": {"generation": generations.pop()}}],
    }
    assert search.body["seq_no_primary_term"] is True and search.body["_source"] is False
    # Each delete is conditional on the version the search saw, like delete-by-query's.
    assert delete.path == "/_bulk"
    assert delete.body == [
        {"delete": {"_index": "idx", "_id": i, "if_seq_no": 7, "if_primary_term": 1}}
        for i in ("1:t1:b", "1:t1:d")
    ]
    assert refresh_after.path == "/idx/_refresh"  # the next search no longer finds them
    with pytest.raises(ValueError):
        index.replace_document("t1", "d1", [_chunk("x", doc="d2")])


def test_replace_of_a_document_without_a_marker_gives_it_one_first(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx")
    script.requests.clear()
    # "d1" was upserted ("a", "b"); "d9" has nothing. A hit's sort value is its chunk id.
    upserted = [{"_id": document_id("t1", c), "_score": None, "sort": [c]} for c in "ab"]
    listed = iter([(200, {"hits": {"hits": upserted}}), _hits()])

    def handler(request: Request) -> Reply:
        if request.path == "/idx-commits/_mget":
            return _markers(request, {})
        if request.path == "/idx/_search":
            return next(listed) if "seq_no_primary_term" not in request.body else _hits()
        if request.path == "/_bulk":
            return _bulk_ok(request)
        return 201, {"result": "created"}

    script.handler = handler
    index.replace_document("t1", "d1", [_chunk("a"), _chunk("c")])
    check, listing, create, write, commit, stale = script.requests
    assert check.path == "/idx-commits/_mget"
    # Its chunks are listed: the marker must keep showing them until the commit.
    assert listing.path == "/idx/_search"
    assert listing.body["query"] == {
        "bool": {"filter": [{"term": {"tenant_id": "t1"}}, {"term": {"doc_id": "d1"}}]}
    }
    assert listing.body["sort"] == [{"chunk_id": "asc"}] and listing.body["_source"] is False
    # Created only if absent, so a marker another writer made in between is kept.
    assert (create.method, create.path) == ("PUT", _marker("_create"))
    assert create.body == {"tenant_id": "t1", "doc_id": "d1", "chunk_ids": ["a", "b"]}
    assert write.path == "/_bulk"
    assert (commit.path, commit.body["chunk_ids"]) == (_marker("_doc"), ["a", "c"])
    assert stale.path == "/idx/_search" and "must_not" in stale.body["query"]["bool"]

    script.requests.clear()
    index.begin_replace("t1", "d9")  # a new document: an empty marker hides it until commit
    assert [r.path for r in script.requests] == [
        "/idx-commits/_mget",
        "/idx/_search",
        _marker("_create", "d9"),
    ]
    assert script.requests[-1].body["chunk_ids"] == []


def test_delete_pages_through_every_match_and_keeps_rewritten_chunks(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx", chunk_size=2)
    script.requests.clear()
    pages = iter([_hits("a", "b"), _hits("c", "d"), _hits("e")])

    def handler(request: Request) -> Reply:
        if request.path == "/idx/_search":
            return next(pages)
        if request.path == "/_bulk":
            return _bulk_deleted(request, conflicts=frozenset({"c"}))
        return 200, {"_shards": {}}

    script.handler = handler
    assert index.delete_document("t1", "d1") == 4  # "c" changed after the search: kept
    hide, *middle, forget = script.requests
    # The document is hidden (an empty marker) before any chunk goes, and its marker
    # is removed only once they are gone.
    assert (hide.method, hide.path) == ("PUT", _marker("_doc"))
    assert hide.body == {"tenant_id": "t1", "doc_id": "d1", "chunk_ids": []}
    assert (forget.method, forget.path) == ("DELETE", _marker("_doc"))
    assert [r.path for r in middle] == [
        "/idx/_search",
        "/_bulk",
        "/idx/_search",
        "/_bulk",
        "/idx/_search",
        "/_bulk",
        "/idx/_refresh",
    ]
    searches = [r for r in middle if r.path == "/idx/_search"]
    assert [s.body.get("search_after") for s in searches] == [None, ["b"], ["d"]]
    assert {s.body["size"] for s in searches} == {2}
    assert all(s.body["sort"] == [{"chunk_id": "asc"}] for s in searches)

    script.requests.clear()

    def nothing_to_delete(request: Request) -> Reply:
        if request.path == "/idx/_search":
            return _hits()
        if request.path.startswith("/idx-commits/_doc/"):
            return 200, {"result": "updated" if request.method == "PUT" else "deleted"}
        return 500, {}

    script.handler = nothing_to_delete
    assert index.delete_document("t1", "d1") == 0
    # Nothing to refresh; a marker forgotten by an earlier delete is not an error.
    assert [r.path for r in script.requests] == [_marker("_doc"), "/idx/_search", _marker("_doc")]
    script.requests.clear()
    script.handler = lambda r: (
        (404, {"result": "not_found"}) if r.method == "DELETE" else nothing_to_delete(r)
    )
    assert index.delete_document("t1", "d1") == 0


def test_delete_raises_on_errors_other_than_conflicts(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx")

    def handler(request: Request) -> Reply:
        if request.path == "/idx/_search":
            return _hits("a")
        item = {"_id": "a", "status": 400, "error": {"type": "illegal_argument_exception"}}
        return 200, {"errors": True, "took": 1, "items": [{"delete": item}]}

    script.handler = handler
    with pytest.raises(BulkIndexError):
        index.delete_document("t1", "d1")


def test_delete_document_refreshes_first_when_writes_do_not(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx", refresh=False)
    script.requests.clear()
    script.handler = lambda r: _hits() if r.path == "/idx/_search" else (200, {"_shards": {}})
    assert index.delete_document("t1", "d1") == 0
    assert [r.path for r in script.requests] == [
        _marker("_doc"),  # hidden first
        "/idx/_refresh",
        "/idx/_search",
        _marker("_doc"),  # forgotten last
    ]
    assert "must_not" not in script.requests[2].body["query"]["bool"]


# What an Elasticsearch 8.19.21 node answers this client (recorded from a real one).
ES8_REFUSAL: dict[str, Any] = {
    "error": {
        "root_cause": [
            {
                "type": "media_type_header_exception",
                "reason": "Invalid media-type value on headers [Accept, Content-Type]",
            }
        ],
        "type": "media_type_header_exception",
        "reason": "Invalid media-type value on headers [Accept, Content-Type]",
        "caused_by": {
            "type": "status_exception",
            "reason": "Accept version must be either version 8 or 7, but found 9. "
            "Accept=application/vnd.elasticsearch+json; compatible-with=9",
        },
    },
    "status": 400,
}


def test_an_elasticsearch_8_cluster_is_refused_with_its_version(script: Script) -> None:
    def es8(request: Request) -> Reply:
        if request.path == "/_nodes/_local":
            return 200, {"nodes": {"n1": {"version": "8.19.21"}}}
        return 400, ES8_REFUSAL

    script.handler = es8
    with pytest.raises(IncompatibleServerError) as caught:
        ElasticKeywordIndex(_client(), "idx")
    message = str(caught.value)
    assert "\n" not in message
    assert "http://localhost:9200 runs Elasticsearch 8.19.21" in message
    assert "Accept version must be either version 8 or 7, but found 9)" in message
    assert "upgrade the cluster to 9.x" in message
    assert isinstance(caught.value, SettingsError)  # the CLI prints it as one line

    script.handler = lambda r: (400, ES8_REFUSAL)  # the version cannot be read either
    with pytest.raises(IncompatibleServerError, match="runs a server, which refuses"):
        ElasticKeywordIndex(_client(), "idx")


def _source(cid: str, doc: str = "d1") -> dict[str, Any]:
    return {
        "chunk_id": cid,
        "doc_id": doc,
        "tenant_id": "t1",
        "source": "a.md",
        "text": "x",
        "span_start": 0,
        "span_end": 1,
        "content_hash": "h",
        "acl": ["__public__"],
        "heading": "",
        "generation": "g",
    }


def test_search_sends_the_built_query_and_maps_hits(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx")
    script.requests.clear()

    def handler(request: Request) -> Reply:
        if request.path == "/idx-commits/_mget":
            return _markers(request, {"d1": ["a"]})
        hit = {"_id": "1", "_score": 2.5, "_source": _source("a")}
        return 200, {"hits": {"hits": [hit]}}

    script.handler = handler
    flt = SearchFilter("t1", frozenset({"hr"}))
    (hit,) = index.search("wal AND x", flt, 4)
    assert hit.score == 2.5
    assert hit.chunk == Chunk("a", "d1", "t1", "a.md", "x", (0, 1), "h")
    search, markers = script.requests
    assert search.path == "/idx/_search"
    assert search.body == build_query("wal AND x", flt, 4)
    # The hits' commit markers are read in one real-time request, in the caller's tenant.
    assert markers.path == "/idx-commits/_mget"
    assert markers.body == {"ids": [document_id("t1", "d1")]}
    assert markers.params["_source_includes"] == "doc_id,chunk_ids"

    script.requests.clear()
    script.handler = lambda r: (200, {"hits": {"hits": []}})
    assert index.search("wal", flt, 4) == []
    assert [r.path for r in script.requests] == ["/idx/_search"]  # no hits: no marker read
    script.requests.clear()
    assert index.search('"" * ()', flt, 4) == []
    assert index.search("wal", flt, 0) == []
    assert script.requests == []  # nothing to match: no request at all


def test_search_drops_hits_their_marker_does_not_list(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx")
    script.requests.clear()
    # "d1" is being replaced: "b" is written but not committed. "d2" is committed
    # without chunks (being deleted). "d3" was written before markers: it has none.
    ranked = [("b", "d1"), ("x", "d2"), ("a", "d1"), ("old", "d3")]

    def handler(request: Request) -> Reply:
        if request.path == "/idx-commits/_mget":
            return _markers(request, {"d1": ["a", "c"], "d2": []})
        hits = [
            {"_id": c, "_score": 9.0 - i, "_source": _source(c, d)}
            for i, (c, d) in enumerate(ranked)
        ]
        return 200, {"hits": {"hits": hits}}

    script.handler = handler
    hits = index.search("x", SearchFilter("t1"), 4)
    assert [(h.chunk.chunk_id, h.score) for h in hits] == [("a", 7.0), ("old", 6.0)]  # order kept
    (markers,) = [r for r in script.requests if r.path == "/idx-commits/_mget"]
    assert sorted(markers.body["ids"]) == [document_id("t1", d) for d in ("d1", "d2", "d3")]


def test_transient_errors_are_retried(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx")
    script.requests.clear()
    replies = iter([(503, {"error": "unavailable"}), (429, {"error": "busy"}), (200, {"count": 7})])
    script.handler = lambda r: next(replies)
    assert index.count() == 7
    assert len(script.requests) == 3
    assert script.requests[-1].body == {"query": {"match_all": {}}}


def test_count_with_a_limit_stops_early_inside_the_filter(script: Script) -> None:
    index = ElasticKeywordIndex(_client(), "idx")
    script.requests.clear()
    script.handler = lambda r: (200, {"count": 1, "terminated_early": True})
    flt = SearchFilter("t1", frozenset({"hr"}))
    assert index.count(flt, limit=1) == 1
    (request,) = script.requests
    assert request.path == "/idx/_count"
    assert request.params.get("terminate_after") == "1"
    assert request.body == {"query": {"bool": {"filter": filter_clauses(flt)}}}
