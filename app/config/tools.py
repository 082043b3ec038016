"""The ``limits`` and ``tools`` sections: run budgets and which tools run, how often."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from app.config.section import Section

__all__ = ["LimitSettings", "ToolPolicy", "ToolSettings"]


class LimitSettings(Section):
    """Guards and budgets applied by the graph."""

    max_input_chars: int = Field(default=8000, gt=0)
    max_output_chars: int = Field(default=16000, gt=0)
    max_tool_steps: int = Field(default=6, ge=0, le=50)
    tool_timeout_s: float = Field(default=10.0, gt=0)
    history_token_budget: int = Field(default=3000, ge=256)
    compress_ratio: float = Field(default=0.7, gt=0, lt=1)
    keep_recent_messages: int = Field(default=6, ge=2)
    max_tool_calls: int = Field(default=12, ge=0, le=500)
    """Tool calls one run (one question) may make in all."""
    max_run_tokens: int = Field(default=60_000, ge=256)
    """Model tokens (prompt and reply) one run may spend before it stops calling tools."""
    max_run_seconds: float = Field(default=120.0, gt=0)
    """Wall time of one run; time spent waiting for an approval does not count."""


ToolPolicy = Literal["allow", "require_approval", "deny"]


class ToolSettings(Section):
    """Which tools the model may call, under which policy, and how often."""

    enabled: list[str] = Field(
        default_factory=lambda: [
            "knowledge_search",
            "calculator",
            "current_time",
            "convert_units",
            "create_note",
        ]
    )
    """Tools offered to the model; ``http_get`` is off until it is listed here."""
    policies: dict[str, ToolPolicy] = Field(default_factory=dict)
    """Per tool; unset: read and compute tools are allowed, write tools need approval."""
    http_allowlist: list[str] = Field(default_factory=list)
    """Hosts (``host`` or ``host:port``) that ``http_get`` may fetch; empty refuses all."""
    http_max_bytes: int = Field(default=200_000, ge=1024)
    max_output_chars: int = Field(default=4000, ge=200)
    max_repeats: int = Field(default=3, ge=2, le=20)
    """The same call (tool and arguments) this many times in one run stops the run."""
    rate_limit_per_user: str = "60/minute"
    """Calls one user may make to all tools together, e.g. ``60/minute``."""
    rate_limits: dict[str, str] = Field(default_factory=lambda: {"http_get": "10/minute"})
    """Per tool and user, e.g. ``{"http_get": "10/minute"}``."""
    rate_limit_storage: str = "memory://"
    """``memory://`` (one process) or ``redis://host:port/db`` (shared by all replicas)."""
    audit_path: Path | None = None
    """JSON-lines file of audit records (None: ``<data_dir>/audit.jsonl``); they are also
    logged to ``ragent.audit``."""
    audit_redis_url: str | None = None
    """Set: audit records go to the Redis stream ``ragent:audit`` here instead of the file
    (every replica's records in one place, none on a pod's disk), and to the log."""
    audit_max_records: int = Field(default=1_000_000, ge=1000)
    """The Redis stream keeps about this many records, the oldest trimmed first."""

    @model_validator(mode="after")
    def _valid_limits(self) -> ToolSettings:
        from limits import parse_many

        for name, rate in [("rate_limit_per_user", self.rate_limit_per_user)] + [
            (f"rate_limits.{tool}", rate) for tool, rate in self.rate_limits.items()
        ]:
            try:
                parse_many(rate)
            except ValueError:
                raise ValueError(f"{name}: {rate!r} is not a rate such as '10/minute'") from None
        if not self.rate_limit_storage.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("rate_limit_storage must start with memory:// or redis://")
        return self
