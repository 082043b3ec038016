"""Goal checks and the printed tables of bench/retrieval.py."""

from __future__ import annotations

from typing import Any

__all__ = ["goals", "print_report"]

P50_GOALS_MS = {5_000: 2.0, 100_000: 10.0, 1_000_000: 50.0}
VS_PEERS = 5.0
UPDATES_PER_S = 5_000.0
NAMES = {"langchain": "LangChain", "llamaindex": "LlamaIndex", "haystack": "Haystack"}


def _check(goal: str, value: Any, met: bool | None) -> dict[str, Any]:
    status = "SKIP" if met is None else ("PASS" if met else "FAIL")
    return {"goal": goal, "value": value, "status": status}


def peer_ratio(speed: dict[str, Any]) -> tuple[str, float] | None:
    """(fastest peer, its p50 / ragent's hybrid p50) at one size, when peers were timed."""
    peers = {p: v["p50_ms"] for p, v in speed.get("peers", {}).items() if "p50_ms" in v}
    ours = speed["ragent"]["hybrid"].get("p50_ms")
    if not peers or not ours:
        return None
    fastest = min(peers, key=lambda p: peers[p])
    return fastest, round(peers[fastest] / ours, 2)


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS, FAIL or SKIP (not measured in this run) for every goal."""
    checks = []
    for name, q in result["quality"].items():
        s = q["systems"]
        ndcg = {k: v["ndcg@10"] for k, v in s.items()}
        best_single = max(ndcg["ragent bm25"], ndcg["ragent dense"])
        checks.append(
            _check(
                f"{name}: hybrid nDCG@10 >= max(BM25, dense) = {best_single:.4f}",
                ndcg["ragent hybrid"],
                ndcg["ragent hybrid"] >= best_single,
            )
        )
        peers = {k: v for k, v in ndcg.items() if not k.startswith("ragent")}
        best = max(peers.values(), default=None)
        checks.append(
            _check(
                f"{name}: hybrid nDCG@10 above every peer"
                + ("" if best is None else f" (best {best:.4f})"),
                ndcg["ragent hybrid"],
                None if best is None else ndcg["ragent hybrid"] > best,
            )
        )
    speed = result["speed"]
    for size, goal in P50_GOALS_MS.items():
        p50 = speed.get(str(size), {}).get("ragent", {}).get("hybrid", {}).get("p50_ms")
        checks.append(
            _check(
                f"hybrid p50 <= {goal:g} ms at {size:,} chunks",
                p50,
                None if p50 is None else p50 <= goal,
            )
        )
    ratio = next((r for s in speed.values() if (r := peer_ratio(s))), None)
    checks.append(
        _check(
            f"hybrid p50 >= {VS_PEERS:g}x faster than the fastest peer"
            + ("" if ratio is None else f" ({NAMES.get(ratio[0], ratio[0])})"),
            None if ratio is None else ratio[1],
            None if ratio is None else ratio[1] >= VS_PEERS,
        )
    )
    for size, entry in speed.items():
        rate = entry["ragent"]["updates"]["chunks_per_s"]
        checks.append(
            _check(
                f"index updates >= {UPDATES_PER_S:,.0f} chunks/s at {int(size):,} chunks",
                rate,
                rate is not None and rate >= UPDATES_PER_S,
            )
        )
    return checks


def _ms(entry: dict[str, Any] | None, key: str) -> str:
    value = (entry or {}).get(key)
    return "-" if value is None else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())


def print_report(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(
        f"Retrieval benchmark: embedder {s['embed_model']} (same vectors for every system), "
        f"ragent fusion {s['fusion']} k={s['rrf_k']} top_k={s['top_k']} "
        f"weights dense {s['dense_weight']} / keyword {s['keyword_weight']} "
        f"depths dense {s['dense_depth'] or s['top_k']} / keyword "
        f"{s['keyword_depth'] or s['top_k']} (config: {s['config']})"
    )
    quality = result["quality"]
    names = list(quality)
    if names:
        _quality_table(quality, names)
    _speed_table(result["speed"])
    _writes_table(result["speed"])
    print()
    for goal in result["goals"]:
        value = goal["value"]
        shown = "-" if value is None else (f"{value:,.4g}" if isinstance(value, float) else value)
        print(f"{goal['status']}: {goal['goal']} (got {shown})")
    for peer, error in result.get("peer_errors", {}).items():
        print(f"note: {NAMES.get(peer, peer)} failed: {error}")


def _quality_table(quality: dict[str, Any], names: list[str]) -> None:
    print("\nQuality: nDCG@10 / Recall@10 / MRR@10")
    systems = list(dict.fromkeys(k for q in quality.values() for k in q["systems"]))
    rows = []
    for system in systems:
        row = [NAMES.get(system, system)]
        for name in names:
            m = quality[name]["systems"].get(system)
            row.append(
                "-"
                if m is None
                else f"{m['ndcg@10']:.3f} / {m['recall@10']:.3f} / {m['mrr@10']:.3f}"
            )
        rows.append(row)
    _table(["system", *[f"{n} ({quality[n]['queries']} q)" for n in names]], rows)


def _speed_table(speed: dict[str, Any]) -> None:
    if not speed:
        return
    print("\nSearch latency, query embedding excluded (ms)")
    rows = []
    for size, entry in sorted(speed.items(), key=lambda x: int(x[0])):
        r = entry["ragent"]
        label = f"{int(size):,} ({r['corpus']})"
        cases = [
            ("ragent hybrid", r["hybrid"]),
            (f"  filter admitting {r['filtered_share'] * 100:.0f} %", r["hybrid_filtered"]),
            ("  keyword only", r["keyword"]),
            ("  dense only", r["dense"]),
            *((f"{NAMES.get(p, p)} hybrid", v) for p, v in entry.get("peers", {}).items()),
        ]
        rows += [[name, label, _ms(v, "p50_ms"), _ms(v, "p95_ms")] for name, v in cases]
        if ratio := peer_ratio(entry):
            rows.append([f"fastest peer / ragent (p50): {ratio[1]:.1f}x", "", "", ""])
    _table(["system", "chunks", "p50", "p95"], rows)


def _writes_table(speed: dict[str, Any]) -> None:
    if not speed:
        return
    print("\nIndex writes, embedding excluded (chunks/s)")
    rows = []
    for size, entry in sorted(speed.items(), key=lambda x: int(x[0])):
        load, upd = entry["ragent"]["load"], entry["ragent"]["updates"]
        built = f" (build {load['build_wall_seconds']} s)" if "build_wall_seconds" in load else ""
        rows.append(
            [
                f"{int(size):,}",
                f"{load['chunks_per_s']:,.0f}{built}",
                f"{upd['chunks_per_s']:,.0f}",
                f"{upd['first_search_after_s'] * 1000:.1f}",
            ]
        )
    _table(
        ["chunks", "bulk load (upsert)", "updates (replace_document)", "search after (ms)"], rows
    )
