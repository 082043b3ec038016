"""The production retrieval profile end to end: the real CLI on real Weaviate + Elasticsearch.

``ragent ingest`` writes to both engines; ``ragent ask`` answers with citations whose spans
match, for the right tenant and ACL groups only; a changed file replaces its chunks in both
engines, and ``--prune`` removes a deleted file's chunks from both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.remote_fixtures import (  # noqa: F401 - fixtures
    RemoteProfile,
    check_remote_citations,
    remote_fixture,
)
from tests.servers import ragent

pytestmark = pytest.mark.e2e

STAGING = (
    "# Staging\n\nThe staging cluster is rebuilt every Tuesday at 04:00 UTC by the platform team.\n"
)
STAGING_V2 = (
    "# Staging\n\nThe staging cluster is rebuilt every Thursday at 22:00 UTC by the SRE rota.\n"
)
BUDGET = "# Budget\n\nThe quarterly budget review happens on the second Thursday of March.\n"
OTHER = "# Staging\n\nOur staging cluster is rebuilt on Fridays at noon by the web team.\n"


def _ingest(remote: RemoteProfile, data: Path, tenant: str, *args: str) -> dict[str, Any]:
    result = ragent("ingest", *args, "--json", "--tenant", tenant, env=remote.env(data))
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _ask(
    remote: RemoteProfile, data: Path, tenant: str, question: str, *args: str
) -> dict[str, Any]:
    result = ragent("ask", question, "--json", *args, env=remote.env(data, tenant))
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_cli_ingest_and_ask_on_weaviate_and_elasticsearch(
    remote: RemoteProfile, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    public, finance, other = tmp_path / "public", tmp_path / "finance", tmp_path / "other"
    for folder, name, text in [
        (public, "staging.md", STAGING),
        (finance, "budget.md", BUDGET),
        (other, "staging.md", OTHER),
    ]:
        folder.mkdir()
        (folder / name).write_text(text, encoding="utf-8")

    first = _ingest(remote, data, "acme", str(public))
    assert (first["documents"], first["failed"]) == (1, [])
    assert _ingest(remote, data, "acme", str(finance), "--acl", "finance")["documents"] == 1
    assert _ingest(remote, data, "globex", str(other))["documents"] == 1
    es_ids, wv_ids = remote.chunk_ids("acme")
    assert es_ids == wv_ids and len(es_ids) >= 2  # the same chunks in both engines

    staging = _ask(remote, data, "acme", "When is the staging cluster rebuilt?")
    assert staging["refused"] is False and "Tuesday" in staging["answer"], staging
    assert {c["source"] for c in staging["citations"]} == {str(public / "staging.md")}
    check_remote_citations(remote, "acme", staging["citations"])

    # ACL: the finance document is invisible without the group, cited with it.
    question = "When does the quarterly budget review happen?"
    hidden = _ask(remote, data, "acme", question)
    assert all("budget" not in c["source"] for c in hidden["citations"]), hidden
    assert "second Thursday" not in hidden["answer"]
    shown = _ask(remote, data, "acme", question, "--groups", "finance")
    assert "second Thursday of March" in shown["answer"], shown
    check_remote_citations(remote, "acme", shown["citations"])

    # Tenants: globex sees its own staging note, never acme's.
    theirs = _ask(remote, data, "globex", "When is the staging cluster rebuilt?")
    assert "Fridays" in theirs["answer"] and "Tuesday" not in theirs["answer"], theirs
    assert {c["source"] for c in theirs["citations"]} == {str(other / "staging.md")}
    check_remote_citations(remote, "globex", theirs["citations"])

    # A changed file replaces its chunks in both engines.
    (doc_id,) = {c["doc_id"] for c in staging["citations"]}
    before = remote.chunk_ids("acme", doc_id)
    (public / "staging.md").write_text(STAGING_V2, encoding="utf-8")
    assert _ingest(remote, data, "acme", str(public))["documents"] == 1
    after_es, after_wv = remote.chunk_ids("acme", doc_id)
    assert after_es == after_wv and after_es.isdisjoint(before[0])
    texts = [c["text"] for c in remote.es_chunks("acme", doc_id)]
    texts += [c["text"] for c in remote.weaviate_chunks("acme", doc_id)]
    assert texts and all("Tuesday" not in t for t in texts)
    changed = _ask(remote, data, "acme", "When is the staging cluster rebuilt?")
    assert "Thursday at 22:00" in changed["answer"] and "Tuesday" not in changed["answer"]
    check_remote_citations(remote, "acme", changed["citations"])

    # --prune removes a deleted file's chunks from both engines, and nothing else.
    (public / "staging.md").unlink()
    (public / "kept.md").write_text("# Kept\n\nNothing to see.\n", encoding="utf-8")
    pruned = _ingest(remote, data, "acme", str(public), "--prune")
    assert pruned["pruned"] == 1, pruned
    assert remote.chunk_ids("acme", doc_id) == (set(), set())
    assert remote.chunk_ids("globex")[0] and remote.chunk_ids("globex")[1]
    budget_ids = remote.chunk_ids("acme")
    assert budget_ids[0] == budget_ids[1] and budget_ids[0]
