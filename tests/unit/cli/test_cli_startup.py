"""The ``ragent`` command starts without LangGraph or the embedder: cheap subcommands stay cheap.

``ragent --help``, ``ragent keys ...``, ``ragent memory ...`` and every one-line error
must not pay for importing the graph (about 2 s here), the embedding runtime or the graph
builder. torch and sentence-transformers are listed too: with the optional torch extra
installed, nothing may import them at start-up either.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "langgraph",
    "langchain_core",
    "onnxruntime",
    "onnx",
    "safetensors",
    "torch",
    "sentence_transformers",
    "transformers",
)

SCRIPT = f"""
import json, sys
import app.cli.main
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def test_importing_the_command_loads_no_graph_and_no_model() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []
