"""The default profile makes no network access at all, from ingest to a cited answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.conftest import QUESTION, Corpus
from tests.servers import REPO

pytestmark = pytest.mark.e2e

# An audit hook sees every socket connect and name lookup made by Python code, ours and
# every library's, and aborts the process on the first one that leaves the machine.
DRIVER = textwrap.dedent(
    """
    import os, sys
    LOCAL = {"127.0.0.1", "::1", "localhost"}
    def hook(event, args):
        if event in ("socket.connect", "socket.getaddrinfo"):
            target = args[1] if event == "socket.connect" else args
            host = target[0] if isinstance(target, tuple) else target
            if isinstance(host, (str, bytes)) and str(host) not in LOCAL and "/" not in str(host):
                sys.stderr.write(f"NETWORK ACCESS: {event} {target!r}\\n")
                sys.stderr.flush()
                os._exit(99)
    sys.addaudithook(hook)
    from app.cli.main import main
    sys.argv = ["ragent", *sys.argv[1:]]
    main()
    """
)


def _run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGENT_", "HF_"))}
    env["RAGENT_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ingest_and_ask_never_touch_the_network(corpus: Corpus, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ingest = _run("ingest", str(corpus.docs), "--json", data_dir=data_dir)
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["documents"] == 1
    ask = _run("ask", QUESTION, "--json", data_dir=data_dir)
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert "1000 pages" in answer["answer"] and answer["citations"]
    assert "NETWORK ACCESS" not in ask.stderr + ingest.stderr
