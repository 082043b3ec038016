"""The child process that serves a GGUF model: ``python -m app.llm.local.server``.

It runs llama.cpp's own OpenAI-compatible HTTP server (through ``xllamacpp``, a prebuilt
llama.cpp: no compiler, no GPU, no network) on loopback, and exits on SIGTERM or SIGINT,
or when the process that started it is gone, so a killed ragent leaves no model server
behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

__all__ = ["main"]

_PARENT_POLL_S = 1.0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.llm.local.server")
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--context", type=int, default=8192, help="context window in tokens")
    parser.add_argument("--threads", type=int, default=0, help="0: every core")
    parser.add_argument("--alias", default="", help="the model's name in responses")
    parser.add_argument("--parent", type=int, default=0, help="exit when this pid is gone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Serve the model until told to stop."""
    args = _arguments(argv)
    import xllamacpp  # imported here: the parent process never loads llama.cpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.context
    params.n_parallel = 1  # one sequence at a time: the whole context for each request
    params.use_jinja = True  # the model's own chat template, tools included
    params.verbosity = 1  # errors only: prompts never reach the log
    if args.alias:
        params.model_alias = args.alias
    threads = args.threads or os.cpu_count() or 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = xllamacpp.Server(params)
    sys.stdout.write(f"serving {server.listening_address}\n")
    sys.stdout.flush()
    while not stop.wait(_PARENT_POLL_S):
        if args.parent and os.getppid() != args.parent:
            break  # the parent died without stopping us
    sys.stdout.flush()
    os._exit(0)  # llama.cpp's server threads do not join; nothing is left to write


if __name__ == "__main__":
    main()
