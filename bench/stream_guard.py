"""What guarding a stream costs: CPU per token and how far the sent text trails the model.

A reply is fed to :class:`app.safety.reply.ReplyGuard` (redaction, prompt-leak check,
size cap) in pieces of ``--piece`` characters, as a model streams it, with the default
system prompt. Three replies: plain prose (the sample answers of
``evals/datasets/samples_qa.jsonl``), the same with personal data and secrets in every
sentence, and a reply that recites the system prompt. It prints, per reply, the CPU per
piece (median of ``--rounds``), the characters of the redacted reply held back after each
piece (mean and largest, until the leak check trips), and whether it tripped.

    .venv/bin/python bench/stream_guard.py [--piece 4] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from app import prompts
from app.safety import redact
from app.safety.reply import ReplyGuard

REPO = Path(__file__).resolve().parents[1]
PII = (
    " Mail john.doe@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111,"
    " key sk-abc123def456ghi789jkl012mno."
)


def replies() -> dict[str, str]:
    lines = (REPO / "evals" / "datasets" / "samples_qa.jsonl").read_text().splitlines()
    references = [json.loads(line).get("reference") for line in lines]
    prose = " ".join(f"{r} [S1]" for r in references if r)
    with_pii = " ".join(s + PII for s in prose.split(". "))
    recital = "Sure. " + prompts.SYSTEM_PROMPT.format(now="2026-12-06T22:00:00+00:00")
    return {"prose": prose, "prose+pii": with_pii, "recital": recital}


def run(text: str, piece: int) -> tuple[float, list[int], bool]:
    guard = ReplyGuard(prompt=prompts.SYSTEM_PROMPT, max_chars=1_000_000)
    sent, steps = 0, 0
    started = time.process_time()
    for i in range(0, len(text), piece):
        sent += len(guard.feed(text[i : i + piece]))
        steps += 1
    guard.close()
    return (time.process_time() - started) / steps, [], guard.tripped


def lag(text: str, piece: int) -> list[int]:
    """Characters held back after each piece, counted in the redacted text."""
    guard = ReplyGuard(prompt=prompts.SYSTEM_PROMPT, max_chars=1_000_000)
    held, sent = [], 0
    for i in range(0, len(text), piece):
        sent += len(guard.feed(text[i : i + piece]))
        if guard.tripped:
            break
        held.append(len(redact(text[: i + piece])[0]) - sent)
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--piece", type=int, default=4, help="characters per streamed piece")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    print(f"{'reply':<10} {'chars':>6} {'us/piece':>9} {'held mean':>10} {'held max':>9} tripped")
    for name, text in replies().items():
        cpu = statistics.median(run(text, args.piece)[0] for _ in range(args.rounds))
        tripped = run(text, args.piece)[2]
        held = lag(text, args.piece)
        print(
            f"{name:<10} {len(text):>6} {cpu * 1e6:>9.1f} {statistics.mean(held):>10.1f}"
            f" {max(held):>9} {tripped}"
        )


if __name__ == "__main__":
    main()
