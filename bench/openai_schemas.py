"""ragent's response schemas (app/server/schemas.py) next to the ``openai`` package's types.

The API builds its responses as dicts; its pydantic models describe them in the OpenAPI
spec (``responses={200: {"model": ChatCompletion}}``). This prints, for a chat completion:

- whether the openai client's ``ChatCompletion`` parses ragent's response, and which of
  ragent's fields it keeps only as untyped extras;
- the JSON schema of each: properties of the completion, its message and its usage, the
  properties openai's would add to ragent's spec that ragent never sends, and the count of
  schema definitions.

    .venv/bin/python bench/openai_schemas.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from openai.types.chat import ChatCompletion as OpenAICompletion
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.server.schemas import ChatCompletion  # noqa: E402

RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_796_000_000,
    "model": "ragent",
    "conversation_id": "t1",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {
                "role": "assistant",
                "content": "SQLite checkpoints at 1000 pages. [S1]",
                "refusal": None,
                "citations": [
                    {
                        "label": "S1",
                        "source": "sqlite-wal.html",
                        "doc_id": "d1",
                        "chunk_id": "c1",
                        "span": [0, 120],
                    }
                ],
                "refused": False,
            },
        }
    ],
    "usage": {
        "prompt_tokens": 900,
        "completion_tokens": 40,
        "total_tokens": 940,
        "calls": [
            {
                "role": "answer",
                "model": "qwen",
                "prompt_tokens": 900,
                "completion_tokens": 40,
                "total_tokens": 940,
            }
        ],
    },
}


def props(schema: dict[str, Any], defs: dict[str, Any], name: str) -> set[str]:
    return set(defs.get(name, schema if name == "" else {}).get("properties", {}))


def shape(model: type[BaseModel], message: str, usage: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    defs = schema.get("$defs", {})
    return {
        "completion": set(schema["properties"]),
        "message": props(schema, defs, message),
        "usage": props(schema, defs, usage),
        "defs": len(defs),
        "bytes": len(json.dumps(schema)),
    }


def main() -> None:
    ChatCompletion.model_validate(RESPONSE)
    parsed = OpenAICompletion.model_validate(RESPONSE)
    extras = sorted(
        [f"completion.{k}" for k in parsed.model_extra or {}]
        + [f"message.{k}" for k in parsed.choices[0].message.model_extra or {}]
        + [f"usage.{k}" for k in (parsed.usage.model_extra if parsed.usage else None) or {}]
    )
    print(f"openai's ChatCompletion parses ragent's response; untyped extras: {', '.join(extras)}")
    ours = shape(ChatCompletion, "AssistantMessage", "Usage")
    theirs = shape(OpenAICompletion, "ChatCompletionMessage", "CompletionUsage")
    print(f"{'schema':22} {'ragent':>8} {'openai':>8}")
    for key in ("completion", "message", "usage"):
        print(f"{key + ' properties':22} {len(ours[key]):>8} {len(theirs[key]):>8}")
    print(f"{'definitions':22} {ours['defs']:>8} {theirs['defs']:>8}")
    print(f"{'JSON bytes':22} {ours['bytes']:>8} {theirs['bytes']:>8}")
    for key in ("completion", "message", "usage"):
        only = sorted(theirs[key] - ours[key])
        print(f"openai's {key} only (ragent never sends): {', '.join(only) or '-'}")


if __name__ == "__main__":
    main()
