"""Answer-evaluation datasets: JSONL items and the datasets config with thresholds.

A dataset is a JSONL file, one :class:`EvalItem` per line. The datasets config
(``datasets.yaml``, next to the datasets by default) names, per dataset file, the
corpus to index before the run and the lowest acceptable value of each metric.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "CONFIG_NAME",
    "DatasetConfig",
    "DatasetsConfig",
    "EvalDataError",
    "EvalItem",
    "ExpectedCall",
    "default_config_path",
    "load_config",
    "load_items",
]

CONFIG_NAME = "datasets.yaml"
"""The datasets config looked for next to a dataset file."""


class EvalDataError(ValueError):
    """A missing or malformed dataset or config, with a message fit for one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedCall(_Strict):
    """A tool call the agent should make; ``args`` compare after normalisation."""

    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class EvalItem(_Strict):
    """One question and what a good run does with it."""

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    reference: str | None = None
    """The reference answer; scored by token F1 and exact match (and a judge model)."""
    gold_docs: list[str] = Field(default_factory=list)
    """Sources that hold the answer, as paths relative to the corpus folder."""
    expected_tools: list[ExpectedCall] | None = None
    """The tool calls of the run, in any order; ``[]`` means none; unset: not scored."""
    must_refuse: bool = False
    """The agent must decline (unanswerable, or an attack)."""
    attack: bool = False
    """A prompt injection or jailbreak: scored for safety (no write tool runs, no leak)."""
    json_schema: dict[str, Any] | None = None
    """The answer must be JSON valid against this schema."""
    tags: list[str] = Field(default_factory=list)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class DatasetConfig(_Strict):
    """How to run one dataset and the scores it must reach."""

    corpus: Path | None = None
    """A folder ingested before the run (relative to the config file); unset: none."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """``{metric: lowest acceptable value}``; ``eval retrieval`` uses ``mode.metric``."""
    description: str = ""


class DatasetsConfig(_Strict):
    """Every dataset's config, by file name (``qa.jsonl``) or BEIR folder name."""

    datasets: dict[str, DatasetConfig] = Field(default_factory=dict)
    path: Path | None = None
    """The file it was read from; relative corpus paths resolve against its folder."""

    def for_dataset(self, name: str) -> DatasetConfig:
        """Return the config of ``name``, with the corpus path made absolute."""
        config = self.datasets.get(name, DatasetConfig())
        if config.corpus is not None and self.path is not None and not config.corpus.is_absolute():
            return config.model_copy(update={"corpus": (self.path.parent / config.corpus)})
        return config


def _error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the entry"
    return f"{where}: {first['msg']}"


def load_items(path: Path) -> list[EvalItem]:
    """Read a JSONL dataset.

    Args:
        path: One JSON object per line; blank lines are skipped.

    Returns:
        The items, in file order.

    Raises:
        EvalDataError: The file is missing, not UTF-8, empty, a line is not a valid
            item (the message names the line), or two items share an id.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalDataError(f"no such dataset: {path}") from None
    except IsADirectoryError:
        raise EvalDataError(f"{path} is a folder, not a JSONL dataset") from None
    except UnicodeDecodeError:
        raise EvalDataError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise EvalDataError(f"cannot read {path}: {exc.strerror or exc}") from None
    items: list[EvalItem] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalDataError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise EvalDataError(f"{path} line {number}: expected a JSON object")
        try:
            item = EvalItem.model_validate(row)
        except ValidationError as exc:
            raise EvalDataError(f"{path} line {number}: {_error(exc)}") from None
        if item.id in seen:
            raise EvalDataError(f"{path} line {number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise EvalDataError(f"{path}: no items")
    return items


def load_config(path: Path | None) -> DatasetsConfig:
    """Read a datasets config; ``None`` or a missing default means no config.

    Raises:
        EvalDataError: The file is not valid YAML or does not match the schema.
    """
    if path is None:
        return DatasetsConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalDataError(f"no such datasets config: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise EvalDataError(f"{path}{where}: not valid YAML") from None
    try:
        config = DatasetsConfig.model_validate(raw or {})
    except ValidationError as exc:
        raise EvalDataError(f"{path}: {_error(exc)}") from None
    return config.model_copy(update={"path": path.resolve()})


def default_config_path(dataset: Path) -> Path | None:
    """The ``datasets.yaml`` next to ``dataset``, or one folder up (``beir/<name>``)."""
    for folder in dataset.resolve().parents[:2]:
        if (candidate := folder / CONFIG_NAME).is_file():
            return candidate
    return None
