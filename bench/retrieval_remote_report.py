"""The printed tables of the remote profile of bench/retrieval.py, and its ratios."""

from __future__ import annotations

from typing import Any

from retrieval_remote import FUSION, WEAVIATE_HYBRID
from retrieval_report import _table

__all__ = ["print_remote_report", "ratios"]


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """ragent fusion against Weaviate hybrid (alpha 0.7): nDCG@10 ratio, p50 ratio per size."""
    out = []
    for name, q in result["quality"].items():
        s = q["systems"]
        if FUSION in s and WEAVIATE_HYBRID in s and s[WEAVIATE_HYBRID]["ndcg@10"]:
            value = s[FUSION]["ndcg@10"] / s[WEAVIATE_HYBRID]["ndcg@10"]
            out.append({"what": f"nDCG@10 on {name}, ragent fusion / Weaviate hybrid", "x": value})
    for size, entry in result["speed"].items():
        s = entry["systems"]
        ours, theirs = s.get(FUSION, {}).get("p50_ms"), s.get(WEAVIATE_HYBRID, {}).get("p50_ms")
        if ours and theirs:
            what = f"p50 at {int(size):,} ({entry['corpus']}), ragent fusion / Weaviate hybrid"
            out.append({"what": what, "x": ours / theirs})
    return [{**r, "x": round(r["x"], 3)} for r in out]


def _fusion_line(name: str, s: dict[str, Any]) -> str:
    if "alpha" in s:
        return f"{name}: alpha {s['alpha']}, relativeScore fusion, BM25F over text + heading"
    depths = f"{s['dense_depth'] or s['top_k']} dense + {s['keyword_depth'] or s['top_k']} BM25"
    return (
        f"{name}: {s['fusion']} k {s['rrf_k']}, weights dense {s['dense_weight']} / keyword "
        f"{s['keyword_weight']}, candidates {depths}, concurrent"
    )


def print_remote_report(result: dict[str, Any]) -> None:
    v = result["versions"]
    src = result["engines"]
    print(
        f"Remote profile: Elasticsearch {v['elasticsearch_server']} ({v['elasticsearch_build']},"
        f" {src['elasticsearch_source']}; elasticsearch-py {v['elasticsearch_client']}), "
        f"Weaviate {v['weaviate_server']} ({src['weaviate_source']}; weaviate-client "
        f"{v['weaviate_client']}, grpcio {v['grpcio']}), Python {v['python']}; one tenant, "
        "top 10, query embedding excluded (vectors precomputed), client-side latency"
    )
    for name, s in result["systems"].items():
        print(f"  {_fusion_line(name, s)}")
    systems = list(result["systems"]) + ["Elasticsearch BM25", "Weaviate dense"]
    speed = sorted(result["speed"].items(), key=lambda x: int(x[0]))
    for name, q in result["quality"].items():
        size = next((k for k, e in speed if e["corpus"] == name), None)
        lat = dict(speed).get(size, {}).get("systems", {}) if size else {}
        chunks = f", {int(size):,} chunks" if size else ""
        print(f"\n{name}: {q['queries']} judged queries{chunks}")
        rows = []
        for system in systems:
            m, t = q["systems"][system], lat.get(system, {})
            rows.append(
                [
                    system,
                    f"{m['ndcg@10']:.3f}",
                    f"{m['recall@10']:.3f}",
                    f"{m['mrr@10']:.3f}",
                    _ms(t.get("p50_ms")),
                    _ms(t.get("p95_ms")),
                ]
            )
        _table(["system", "nDCG@10", "Recall@10", "MRR@10", "p50 ms", "p95 ms"], rows)
    rest = [(k, e) for k, e in speed if e["corpus"] == "synthetic"]
    if rest:
        print("\nSearch latency on synthetic corpora, ms (p50 / p95)")
        header = ["system", *(f"{int(k):,} chunks" for k, _ in rest)]
        rows = [[s, *(_p50_p95(e["systems"][s]) for _, e in rest)] for s in systems]
        _table(header, rows)
    print(
        "\nBulk load through ragent's adapters, 5,000 chunks per upsert: chunks/s "
        "(wall time; CPU seconds of this process and of the server during the load)"
    )
    rows = []
    for size, load in sorted(result["load"].items(), key=lambda x: int(x[0])):
        corpus = result["speed"].get(size, {}).get("corpus", "")
        row = [f"{int(size):,} ({corpus})"]
        for engine in ("elasticsearch", "weaviate"):
            e = load[engine]
            server = "-" if e.get("server_cpu_s") is None else f"{e['server_cpu_s']:.1f}"
            row.append(
                f"{e['chunks_per_s']:,.0f} ({e['seconds']:.1f} s; CPU s: client "
                f"{e['client_cpu_s']:.1f}, server {server})"
            )
        rows.append(row)
    _table(["chunks", "Elasticsearch", "Weaviate"], rows)
    print()
    for r in result["ratios"]:
        print(f"ratio: {r['what']}: {r['x']:.2f}x")
    for size, entry in speed:
        if entry.get("degraded_searches"):
            print(f"note: {entry['degraded_searches']} ragent searches at {size} were degraded")
    rrf = result.get("es_rrf")
    if rrf and not rrf["ran"]:
        print(f"Elasticsearch rrf retriever: not run; the server answered {rrf['error']}")
        for why in rrf["why"]:
            print(f"  - {why}")
    elif rrf:
        print("Elasticsearch rrf retriever: the server accepted the request")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _p50_p95(t: dict[str, Any]) -> str:
    return f"{_ms(t.get('p50_ms'))} / {_ms(t.get('p95_ms'))}"
