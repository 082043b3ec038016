"""The worker of bench/engines.py: runs the candidates that are not ragent dependencies.

Started by bench/engines.py with the interpreter of the benchmark's own venv
(bench/requirements-engines.txt). It reads one JSON message per line on stdin and writes one
JSON reply per line; see engines_common.Host. Anything a library prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from engines_common import Host
from engines_keyword import PEER_SIDE as KEYWORD
from engines_vector import PEER_SIDE as VECTOR


def main() -> int:
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # keep the protocol stream clean of library output
    sys.stdout = sys.stderr
    host = Host({**KEYWORD, **VECTOR})
    for line in sys.stdin:
        try:
            reply = host.handle(json.loads(line))
        except Exception as exc:  # reported to the parent, which stops the run
            reply = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
