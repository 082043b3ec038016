"""Web source throughput: items/s of a crawl of a local site, and an unchanged re-sync (304s).

Run from the repository root:

    .venv/bin/python bench/crawl.py [--pages 200] [--json]

It serves a site of ``--pages`` pages (three paragraphs of 60 words each, a home page
linking to sections that link to the pages, a robots.txt, ETag and Last-Modified) on
loopback, crawls it into a fresh embedded index with the configured embedder, then syncs
it again unchanged: every page is asked for with If-None-Match and answers 304. It prints
items/s of the first sync and the seconds of the unchanged one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.resources import build_resources  # noqa: E402
from app.settings import load_settings  # noqa: E402
from app.sources.factory import build_source_sync  # noqa: E402
from app.sources.web import WebSource  # noqa: E402
from app.sources.web_pages import PageStore  # noqa: E402
from tests.web_site import Served, Site, serve  # noqa: E402

_SECTION = 20


def site(pages: int) -> Site:
    """A home page, ``pages / 20`` section pages and ``pages`` article pages."""
    rng = random.Random(29)
    words = [f"w{i:04d}" for i in range(4000)]
    built = Site()
    built.pages["/robots.txt"] = Served(b"User-agent: *\nDisallow: /admin/\n", "text/plain")
    sections = [f"/section{s}.html" for s in range((pages + _SECTION - 1) // _SECTION)]
    built.pages["/"] = Served(_page("Home", ["Welcome."], sections))
    for number in range(pages):
        paragraphs = [" ".join(rng.choices(words, k=60)) for _ in range(3)]
        built.pages[f"/page{number}.html"] = Served(_page(f"Page {number}", paragraphs, []))
    for s, path in enumerate(sections):
        links = [f"/page{n}.html" for n in range(s * _SECTION, min(pages, (s + 1) * _SECTION))]
        built.pages[path] = Served(_page(f"Section {s}", [f"Section {s}."], links))
    return built


def _page(title: str, paragraphs: list[str], links: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return (
        f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{body}"
        f"<ul>{anchors}</ul></body></html>"
    ).encode()


def run(pages: int) -> dict[str, object]:
    """Crawl the site into a fresh index twice; return the figures."""
    with serve(site(pages)) as served, tempfile.TemporaryDirectory(prefix="ragent-crawl-") as data:
        os.environ["RAGENT_DATA_DIR"] = data
        resources = build_resources(load_settings())
        sync = build_source_sync(resources)
        source = WebSource(
            name="bench",
            store=PageStore(Path(data) / "sources.sqlite"),
            seeds=[served.url("/")],
            private_hosts=["127.0.0.1"],
            max_pages=len(served.pages),
        )
        items = len(served.pages) - 1  # robots.txt is not a page
        started = time.perf_counter()
        first = sync.sync(source, tenant_id="bench")
        first_s = time.perf_counter() - started
        requests = len(served.requests)
        started = time.perf_counter()
        again = sync.sync(source, tenant_id="bench")
        unchanged_s = time.perf_counter() - started
        answers = [r.status for r in served.requests[requests:] if r.path != "/robots.txt"]
    assert first.indexed == items and again.unchanged == items, (first, again)
    assert answers == [304] * items, answers
    return {
        "pages": items,
        "chunks": first.chunks,
        "embedder": resources.embedder.model_name,
        "sync_s": round(first_s, 2),
        "items_per_s": round(items / first_s, 1),
        "unchanged_resync_s": round(unchanged_s, 3),
        "unchanged_pages_per_s": round(items / unchanged_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.pages)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['pages']} pages, {result['chunks']} chunks ({result['embedder']}):"
        f" crawl and index {result['sync_s']} s = {result['items_per_s']} items/s;"
        f" unchanged re-sync (all 304) {result['unchanged_resync_s']} s"
        f" = {result['unchanged_pages_per_s']} pages/s"
    )


if __name__ == "__main__":
    main()
