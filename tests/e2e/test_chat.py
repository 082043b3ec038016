"""``ragent chat``: an interactive loop on one thread, driven through stdin."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir
from tests.servers import BIN

pytestmark = pytest.mark.e2e


def test_chat_answers_each_line_on_one_thread_and_quits_on_empty_line(
    corpus: Corpus, tmp_path: Path
) -> None:
    env = {**os.environ, "RAGENT_DATA_DIR": str(fresh_data_dir(corpus, tmp_path))}
    done = subprocess.run(
        [str(BIN / "ragent"), "chat", "--thread", "t-chat"],
        input=f"{QUESTION}\nHow big is it?\n\nnever asked\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("thread t-chat")
    # Both turns are answered from the document, the follow-up through the thread's history.
    assert out.count("1000 pages") >= 2
    assert out.count("Sources:") == 2
    assert "never asked" not in out
