"""Rebuild the sqlite-docs retrieval set from Debian's sqlite3-doc package.

The corpus is a fixed list of pages of the SQLite 3.40.1 documentation, cut into sections at
their headings (and, on the pages of numbered limits and pragmas, at each item's anchor), and
each section into passages of at most ~150 words at paragraph boundaries. A passage's title is
its page title and heading path ("VACUUM > Description > VACUUM with an INTO clause"), as
ingestion gives a chunk; its id is ``<page>#<section id>#<n>``. ``questions.jsonl`` (kept in
the set's folder, written by hand) names each question's gold page and section ids; every
passage of a gold section is judged relevant.

    python scripts/sqlite_docs_set.py [--deb FILE] [--out evals/datasets/beir/sqlite-docs]

Without ``--deb`` the pinned package is fetched with ``apt-get download``. Needs dpkg-deb.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]

PACKAGE = "sqlite3-doc=3.40.1-2+deb12u2"
SHA256 = "466e30d7066e2641fa13e56bc662a2ad521b8cc9c17dde9c9dac3d4f105e32f2"
DOC_DIR = "usr/share/doc/sqlite3"
PAGES = (
    # Pages the questions are about.
    *("lang_vacuum", "wal", "autoinc", "limits", "foreignkeys", "datatype3", "lang_upsert"),
    *("lang_returning", "gencol", "stricttables", "withoutrowid", "partialindex", "lang_attach"),
    *("lang_transaction", "lang_savepoint", "inmemorydb", "tempfiles", "quirks"),
    *("lang_datefunc", "json1", "fts5", "windowfunctions", "lang_altertable", "lang_analyze"),
    *("lang_createindex", "lang_with", "uri"),
    # Pages on neighbouring topics, which share their words.
    *("lang_createtable", "lang_insert", "lang_update", "lang_delete", "lang_select"),
    *("lang_createtrigger", "lang_createview", "lang_corefunc", "lang_aggfunc", "lang_conflict"),
    *("expridx", "lockingv3", "isolation", "backup", "atomiccommit", "pragma", "rtree"),
)
ANCHOR_SECTIONS = {"limits": "max_", "pragma": "pragma_"}
"""Pages whose items are anchors, not headings: each anchor with this prefix opens a section."""
HEADINGS = {"h1", "h2", "h3", "h4"}
BLOCKS = {"p", "pre", "li", "dt", "dd", "td", "th", "blockquote", "table"}
MAX_WORDS = 150
_NUMBER = re.compile(r"^\s*(\d+\.)+\s*")
_SPACE = re.compile(r"\s+")


def _text(element: lxml.html.HtmlElement) -> str:
    return _SPACE.sub(" ", element.text_content()).strip()


def _sections(path: Path) -> tuple[str, list[tuple[str, list[str], list[str]]]]:
    """Return the page title and its sections: ``(section id, heading path, blocks)``."""
    root = lxml.html.parse(str(path)).getroot()
    title = _text(root.find(".//title"))
    for nav in root.xpath("//div[contains(@class, 'nosearch')] | //script | //style"):
        nav.drop_tree()
    body = root.find(".//div[@class='fancy']")
    body = root.find(".//body") if body is None else body
    prefix = ANCHOR_SECTIONS.get(path.stem)
    sections: list[tuple[str, list[str], list[str]]] = [("top", [], [])]
    levels: list[tuple[int, str]] = []
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in HEADINGS:
            heading = _NUMBER.sub("", _text(element))
            if not heading or element.get("notoc"):
                continue
            level = int(element.tag[1])
            levels = [(lv, h) for lv, h in levels if lv < level] + [(level, heading)]
            ident = element.get("id") or _anchor_before(element) or f"s{len(sections)}"
            sections.append((ident, [h for _, h in levels], []))
        elif prefix and element.tag == "a" and (element.get("name") or "").startswith(prefix):
            name = element.get("name")
            bold = element.getnext()
            label = _text(bold) if bold is not None and bold.tag == "b" else name
            if prefix == "pragma_":
                label = "PRAGMA " + name.removeprefix(prefix)
            sections.append((name, [*(h for _, h in levels[:1]), label], []))
        elif element.tag in BLOCKS and not any(a.tag in BLOCKS for a in element.iterancestors()):
            text = _text(element)
            if text:
                sections[-1][2].append(text)
    return title, [s for s in sections if s[2]]


def _anchor_before(element: lxml.html.HtmlElement) -> str | None:
    previous = element.getprevious()
    return previous.get("name") if previous is not None and previous.tag == "a" else None


def _passages(blocks: list[str]) -> list[str]:
    """Pack blocks into passages of at most ``MAX_WORDS`` words (a longer block is cut)."""
    words = [block.split() for block in blocks]
    passages: list[list[str]] = [[]]
    for block in words:
        for start in range(0, len(block), MAX_WORDS):
            piece = block[start : start + MAX_WORDS]
            if passages[-1] and len(passages[-1]) + len(piece) > MAX_WORDS:
                passages.append([])
            passages[-1].extend(piece)
    return [" ".join(p) for p in passages if p]


def build(doc_root: Path, out: Path) -> tuple[int, int]:
    """Write ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv`` into ``out``.

    Returns:
        The number of passages and of judged questions.

    Raises:
        SystemExit: A question's gold section is not in the corpus.
    """
    corpus: list[dict[str, str]] = []
    by_section: dict[str, list[str]] = {}
    for page in PAGES:
        title, sections = _sections(doc_root / f"{page}.html")
        for ident, path, blocks in sections:
            key = f"{page}.html#{ident}"
            for n, text in enumerate(_passages(blocks)):
                pid = f"{key}#{n}"
                corpus.append({"_id": pid, "title": " > ".join([title, *path]), "text": text})
                by_section.setdefault(key, []).append(pid)
    questions = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    qrels = []
    for q in questions:
        for gold in q["gold"]:
            if gold not in by_section:
                raise SystemExit(f"{q['_id']}: gold section {gold} is not in the corpus")
            qrels.extend((q["_id"], pid) for pid in by_section[gold])
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in corpus)
    with (out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(
            json.dumps({"_id": q["_id"], "text": q["text"]}) + "\n" for q in questions
        )
    (out / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{p}\t1" for q, p in qrels)]
    (out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return len(corpus), len(questions)


def _fetch(folder: Path) -> Path:
    subprocess.run(["apt-get", "download", PACKAGE], cwd=folder, check=True)
    (deb,) = folder.glob("sqlite3-doc_*.deb")
    return deb


def main() -> None:
    """Fetch or take the package, check its sha256, unpack it and build the set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help="the sqlite3-doc .deb (default: download it)")
    parser.add_argument("--out", type=Path, default=Path("evals/datasets/beir/sqlite-docs"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        deb = args.deb or _fetch(Path(tmp))
        digest = hashlib.sha256(deb.read_bytes()).hexdigest()
        if digest != SHA256:
            raise SystemExit(f"{deb}: sha256 {digest}, expected {SHA256} ({PACKAGE})")
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        passages, questions = build(Path(tmp) / DOC_DIR, args.out)
    sys.stdout.write(f"{args.out}: {passages} passages, {questions} questions\n")


if __name__ == "__main__":
    main()
