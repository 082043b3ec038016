"""The tables and per-criterion winners that bench/engines.py prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

KEYWORD_BASE = "tantivy"
VECTOR_BASE = "faiss hnsw"
"""Ratios are engine p50 / this engine's p50."""


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _step(updates: dict[str, Any], step: str) -> str:
    if f"{step}_ms" not in updates:
        return updates[f"{step}_mode"]
    ok = "ok" if updates[f"{step}_ok"] else "FAILED"
    return f"{_ms(updates[f'{step}_ms'])} ms {updates[f'{step}_mode'].split(' ')[0]} {ok}"


def _winners(
    rows: dict[str, dict[str, Any]], criteria: list[tuple[str, Callable[[dict], float], bool]]
) -> None:
    """Print the best candidate per criterion; ragent's own adapters are not candidates."""
    candidates = {n: r for n, r in rows.items() if not n.startswith("ragent")}
    for label, key, low in criteria:
        values = {n: key(r) for n, r in candidates.items()}
        values = {n: v for n, v in values.items() if v is not None}
        if not values:
            continue
        best = min(values.values()) if low else max(values.values())
        tied = [n for n, v in values.items() if v == best]
        shown = f"{best:,.0f}" if best >= 1000 else f"{best:g}"
        print(f"  {label}: {', '.join(tied)} ({shown})")


def print_keyword(section: dict[str, Any], k: int) -> None:
    rows = section["engines"]
    base = rows[KEYWORD_BASE]["all"]["p50_ms"] if KEYWORD_BASE in rows else None
    print(
        f"Keyword engines: {section['dataset']}, {section['passages']:,} passages, "
        f"{section['queries']} queries, k={k}; latency in ms, all engines round-robin"
    )
    header = ["engine", "p50 all", "p95 all", "p50 10%", "p95 10%", "p50/tantivy", "nDCG@10"]
    header += ["build docs/s", "insert 100", "delete 100", "persistence"]
    table = []
    for name, r in rows.items():
        u = r["updates"]
        persist = u["persist_mode"]
        if "persist_ok" in u:
            persist += " (reopened ok)" if u["persist_ok"] else " (reopen FAILED)"
        table.append(
            [
                name,
                _ms(r["all"]["p50_ms"]),
                _ms(r["all"]["p95_ms"]),
                _ms(r["10%"]["p50_ms"]),
                _ms(r["10%"]["p95_ms"]),
                f"{r['all']['p50_ms'] / base:.2f}x" if base else "-",
                f"{r['ndcg@10']:.4f}",
                f"{r['build_rate']:,}",
                _step(u, "insert"),
                _step(u, "delete"),
                persist,
            ]
        )
    _table(header, table)
    print("filters:")
    for name, r in rows.items():
        leaks = f"; {r['leaks']} results outside the 10% filter" if r["leaks"] else ""
        print(f"  {name}: {r['filter']}{leaks}")
    print("winners (candidates only):")
    _winners(
        rows,
        [
            ("p50 latency, all-admitting filter (ms)", lambda r: r["all"]["p50_ms"], True),
            ("p50 latency, 10% filter (ms)", lambda r: r["10%"]["p50_ms"], True),
            ("p95 latency, all-admitting filter (ms)", lambda r: r["all"]["p95_ms"], True),
            ("nDCG@10", lambda r: r["ndcg@10"], False),
            ("build rate (docs/s)", lambda r: r["build_rate"], False),
            ("insert 100 after the build (ms)", lambda r: r["updates"]["insert_ms"], True),
            ("delete 100 (ms)", lambda r: r["updates"]["delete_ms"], True),
        ],
    )


def print_vectors(section: dict[str, Any], k: int) -> None:
    rows = section["engines"]
    base = rows[VECTOR_BASE]["all"]["p50_ms"] if VECTOR_BASE in rows else None
    print(
        f"Vector engines: {section['size']:,} {section['kind']} unit vectors, "
        f"dim {section['dim']}, {section['queries']} queries, k={k}, one thread; "
        "latency in ms, round-robin"
    )
    header = ["engine", "p50", "p95", "recall@20", "p50 10%", "p95 10%", "recall@20 10%"]
    header += ["p50/faiss hnsw", "add vec/s", "add 100", "delete 100"]
    table = []
    for name, r in rows.items():
        u = r["updates"]
        table.append(
            [
                name,
                _ms(r["all"]["p50_ms"]),
                _ms(r["all"]["p95_ms"]),
                f"{r['all']['recall@20']:.3f}",
                _ms(r["10%"]["p50_ms"]),
                _ms(r["10%"]["p95_ms"]),
                f"{r['10%']['recall@20']:.3f}",
                f"{r['all']['p50_ms'] / base:.2f}x" if base else "-",
                f"{r['build_rate']:,}",
                _step(u, "add"),
                _step(u, "delete"),
            ]
        )
    _table(header, table)
    print("filters:")
    for name, r in rows.items():
        notes = [f"{r['leaks']} results outside the filter"] if r["leaks"] else []
        if r["failed"]:
            notes.append(f"{r['failed']} searches returned nothing (fewer than k within ef)")
        print(f"  {name}: {r['filter']}" + "".join(f"; {n}" for n in notes))
    print("winners (candidates only):")
    _winners(
        rows,
        [
            ("p50 latency, unfiltered (ms)", lambda r: r["all"]["p50_ms"], True),
            ("p50 latency, 10% filter (ms)", lambda r: r["10%"]["p50_ms"], True),
            ("recall@20, unfiltered", lambda r: r["all"]["recall@20"], False),
            ("recall@20, 10% filter", lambda r: r["10%"]["recall@20"], False),
            ("add rate (vectors/s)", lambda r: r["build_rate"], False),
        ],
    )
    deletes = [n for n, r in rows.items() if r["updates"].get("delete_ok")]
    print(f"  deletes verified: {', '.join(deletes) or 'none'}")


def print_report(result: dict[str, Any]) -> None:
    if "keyword" in result:
        print_keyword(result["keyword"], result["k"])
        print()
    for section in result.get("vectors", []):
        print_vectors(section, result["k"])
        print()
    versions = result["versions"]
    print(f"versions: {versions}")
    print(f"total {result['seconds']} s")
