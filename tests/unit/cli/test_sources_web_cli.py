"""``ragent sources sync`` of a web source, as a user runs it, against a loopback site."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.cli.test_sources_cli import ragent
from tests.web_site import Site, serve, small_site


@pytest.fixture
def site() -> Iterator[Site]:
    with serve(small_site()) as running:
        yield running


def test_sync_a_web_source(tmp_path: Path, site: Site) -> None:
    (tmp_path / "ragent.yaml").write_text(
        "sources:\n"
        "  - name: handbook\n"
        "    kind: web\n"
        f"    seeds: [{site.url('/')}]\n"
        "    private_hosts: [127.0.0.1]\n"
        "    max_page_bytes: 50000\n"
    )
    listed = ragent(tmp_path, "sources", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["sources"]
    assert (row["kind"], row["url"]) == ("web", site.url("/"))
    synced = ragent(tmp_path, "sources", "sync", "handbook")
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    assert (report["indexed"], report["deleted"]) == (4, 0)
    (failed,) = report["failed"]
    assert failed["source"] == f"source:handbook/{site.url('/big.html')}"
    assert failed["reason"] == "larger than 50000 bytes (max_page_bytes)"
    again = json.loads(ragent(tmp_path, "sources", "sync", "handbook").stdout)
    assert (again["indexed"], again["unchanged"]) == (0, 4)
    assert site.seen("/kettle.html")[-1].status == 304
