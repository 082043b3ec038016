"""Real Elasticsearch and Weaviate for the remote profile of bench/retrieval.py.

Each engine is the server the environment names (``ELASTICSEARCH_URL``; ``WEAVIATE_URL`` with
``WEAVIATE_GRPC_PORT``), used as it is, or one that ``scripts/engines.sh start`` starts on free
loopback ports in a temporary RUN_DIR. What this module starts it always stops, on an error,
Ctrl-C or SIGTERM too. It also reads what each server is (versions, Elasticsearch's licence
and modules) and tries Elasticsearch's own ``rrf`` retriever, reporting why it cannot run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from ingest import BenchError

__all__ = ["ENV_KEYS", "es_rrf_probe", "remote_engines", "server_versions", "tree_cpu_seconds"]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "engines.sh"
ENV_KEYS = {
    "elasticsearch": ("ELASTICSEARCH_URL",),
    "weaviate": ("WEAVIATE_URL", "WEAVIATE_GRPC_PORT"),
}
START_TIMEOUT_S = 900  # a cold Weaviate build from its Go module takes minutes
_COMPAT = {"accept": "application/vnd.elasticsearch+json; compatible-with=9"}


def _read_env(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text(encoding="utf-8").splitlines())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep}


def _start(engine: str, run_dir: Path) -> dict[str, str]:
    try:
        proc = subprocess.run(
            [str(SCRIPT), "start", engine, str(run_dir)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"engines.sh start {engine}: not ready in {START_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise BenchError(f"scripts/engines.sh start {engine} exited {proc.returncode}: {tail}")
    return _read_env(run_dir / "env")


def _stop(run_dir: Path, log: Callable[[str], object]) -> None:
    proc = subprocess.run(
        [str(SCRIPT), "stop", str(run_dir)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        log(f"scripts/engines.sh stop {run_dir} exited {proc.returncode}: {proc.stderr.strip()}")
    shutil.rmtree(run_dir, ignore_errors=True)


def _sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)  # SystemExit unwinds through the finally blocks that stop engines


@contextmanager
def remote_engines(env: dict[str, str], log: Callable[[str], object]) -> Iterator[dict[str, str]]:
    """Both engines' variables (``ENV_KEYS``): from ``env`` where set, else started here.

    Yields a dict that also says, under ``"<engine>_source"``, whether each engine was
    ``started`` by this run or taken from the ``environment``, and for a started one its
    process id under ``"<engine>_pid"`` (what engines.sh wrote to RUN_DIR/pid).
    """
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        with ExitStack() as stack:
            found: dict[str, str] = {}
            for engine, keys in ENV_KEYS.items():
                if env.get(keys[0]):
                    missing = [k for k in keys if not env.get(k)]
                    if missing:
                        raise BenchError(f"{keys[0]} is set, but not {', '.join(missing)}")
                    found |= {k: env[k] for k in keys} | {f"{engine}_source": "environment"}
                    log(f"{engine}: using {env[keys[0]]} from the environment")
                    continue
                run_dir = Path(tempfile.mkdtemp(prefix=f"ragent-bench-{engine}-"))
                stack.callback(_stop, run_dir, log)
                log(f"{engine}: starting it with scripts/engines.sh in {run_dir}")
                started = _start(engine, run_dir)
                if missing := [k for k in keys if k not in started]:
                    raise BenchError(f"{run_dir}/env lacks {', '.join(missing)}")
                found |= {k: started[k] for k in keys} | {f"{engine}_source": "started"}
                found[f"{engine}_pid"] = (run_dir / "pid").read_text().strip()
            yield found
    finally:
        signal.signal(signal.SIGTERM, previous)


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and its descendants; None if it is gone.

    Elasticsearch's RUN_DIR/pid is its launcher, and the server JVM one of its children.
    """
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        proc = int(stat.parent.name)
        parents[proc] = int(fields[1])
        used[proc] = (int(fields[11]) + int(fields[12])) / tick
    if pid not in used:
        return None
    tree, todo = {pid}, [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        todo += children
    return sum(used[p] for p in tree)


def _package(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def server_versions(es: Any, wv: Any) -> dict[str, Any]:
    """Server versions (asked of the servers) and the client libraries' versions."""
    nodes = es.perform_request(
        "GET",
        "/_nodes/_local",
        params={"filter_path": "nodes.*.version,nodes.*.build_type"},
        headers=_COMPAT,
    ).body["nodes"]
    node = next(iter(nodes.values()))
    return {
        "elasticsearch_server": node["version"],
        "elasticsearch_build": node.get("build_type"),
        "weaviate_server": wv.get_meta().get("version"),
        "elasticsearch_client": _package("elasticsearch"),
        "weaviate_client": _package("weaviate-client"),
        "grpcio": _package("grpcio"),
        "python": sys.version.split()[0],
    }


def es_rrf_probe(es: Any, index: str, text: str, vector: np.ndarray, k: int) -> dict[str, Any]:
    """Send Elasticsearch's ``rrf`` retriever (BM25 + kNN) once; say why it cannot run.

    The request is what a BM25 + kNN fusion in Elasticsearch would send. Whatever the
    server answers is reported verbatim, with the cluster's licence and modules: the
    ``rrf`` retriever lives in the ``rank-rrf`` module and needs an Enterprise licence (or a
    trial), and the kNN leg a ``dense_vector`` field, which ragent's index does not have
    (its vectors are in Weaviate).
    """
    from elasticsearch import ApiError

    licence = es.license.get()["license"]["type"]
    plugins = es.nodes.info(node_id="_local", metric="plugins")["nodes"]
    modules = sorted(m["name"] for n in plugins.values() for m in n.get("modules", []))
    facts = {"license": licence, "modules": modules, "has_rank_rrf": "rank-rrf" in modules}
    retriever = {
        "rrf": {
            "retrievers": [
                {"standard": {"query": {"multi_match": {"query": text, "fields": ["text"]}}}},
                {
                    "knn": {
                        "field": "vector",
                        "query_vector": np.asarray(vector, np.float32).tolist(),
                        "k": k,
                        "num_candidates": 10 * k,
                    }
                },
            ],
            "rank_window_size": k,
        }
    }
    try:
        es.search(index=index, retriever=retriever, size=k)
    except ApiError as err:
        error = err.body.get("error") if isinstance(err.body, dict) else None
        kind = error.get("type") if isinstance(error, dict) else type(err).__name__
        detail = error.get("reason") if isinstance(error, dict) else str(err)
        reason = f"HTTP {err.meta.status} {kind}: {detail}"
        why = []
        if not facts["has_rank_rrf"]:
            why.append(
                "this distribution has no rank-rrf module "
                f"(modules: {', '.join(modules) or 'none'})"
            )
        if licence not in ("enterprise", "trial"):
            why.append(f"the rrf retriever needs an Enterprise licence; this cluster has {licence}")
        why.append("the kNN leg would need the vectors in Elasticsearch too (a dense_vector field)")
        return {"ran": False, "error": reason, "why": why, **facts}
    return {"ran": True, "error": None, "why": [], **facts}
