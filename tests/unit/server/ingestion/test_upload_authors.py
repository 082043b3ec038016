"""Upload folders (and so document ids) are per tenant, author (user and ACL) and source."""

from __future__ import annotations

import hashlib
from pathlib import Path

from app.server.ingestion.uploads import Author, keep, upload_dir
from app.settings import Settings


def test_each_author_gets_its_own_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    hr = Author.of("acme/ann", ["hr"])
    assert Author.of("acme/ann", ["hr", "finance", "hr"]) == Author("acme/ann", ("finance", "hr"))
    folders = {
        upload_dir(settings, tenant, source, author=author)
        for tenant in ("acme", "acme#ops", "umbrella")
        for source in ("policy.md", "https://example.com/policy.md")
        for author in (hr, Author.of("acme/bob", ["hr"]), Author.of("acme/ann", []))
    }
    assert len(folders) == 3 * 2 * 3
    # The same author, whatever the order of its groups, finds its folder again.
    again = Author.of("acme/ann", ["hr"])
    assert upload_dir(settings, "acme", "policy.md", author=again) == upload_dir(
        settings, "acme", "policy.md", author=hr
    )
    # Folders of uploads made before authors existed are never reused.
    legacy = hashlib.sha256(b"acme\x1fpolicy.md").hexdigest()[:32]
    assert legacy not in {f.name for f in folders}


def test_another_author_cannot_overwrite_a_kept_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    hr = keep(
        settings, "acme", "policy.md", "policy.md", b"HR", author=Author.of("acme/ann", ["hr"])
    )
    other = keep(settings, "acme", "policy.md", "policy.md", b"X", author=Author.of("acme/eve", []))
    assert hr.path != other.path and hr.path.read_bytes() == b"HR"
    replaced = keep(
        settings, "acme", "policy.md", "policy.txt", b"v2", author=Author.of("acme/ann", ["hr"])
    )
    assert replaced.path.parent == hr.path.parent and not hr.path.exists()
