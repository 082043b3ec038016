"""Model prices and usage quotas (``server.prices``, ``server.quota``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.config.section import Section

__all__ = ["PERIOD_S", "ModelPrice", "QuotaLimits", "QuotaSettings"]

PERIOD_S = {"minute": 60, "hour": 3600, "day": 86_400}
"""Seconds of each quota period; windows are aligned to the UTC epoch."""


class ModelPrice(Section):
    """What a model's tokens cost, in the currency of the operator's choice."""

    input_per_1m: float = Field(ge=0)
    """Price of one million prompt tokens."""
    output_per_1m: float = Field(ge=0)
    """Price of one million completion tokens."""


class QuotaLimits(Section):
    """Limits per period; None: no limit."""

    tokens: int | None = Field(default=None, ge=0)
    """Model tokens (prompt + completion, every model call of every turn)."""
    requests: int | None = Field(default=None, ge=0)
    """Turns (requests that may call a model)."""


class QuotaSettings(Section):
    """Per-tenant and per-user quotas on model tokens and requests.

    A turn is refused (429 ``insufficient_quota`` with ``Retry-After``) before any model
    is called once its tenant, or its user, has used its quota of the current period.
    Usage lives in ``<data_dir>/server.sqlite``, or in Redis with ``server.redis_url``
    (shared by every worker and replica).
    """

    period: Literal["minute", "hour", "day"] = "day"
    """The window the limits count over (aligned to UTC: a day starts at 00:00 UTC)."""
    tenant: QuotaLimits = QuotaLimits()
    """Every tenant's limits, unless ``tenants`` names it."""
    tenants: dict[str, QuotaLimits] = Field(default_factory=dict, max_length=10_000)
    """Limits of named tenants, in place of ``tenant``."""
    user: QuotaLimits = QuotaLimits()
    """Every user's limits (a user of one tenant; an end user counts as their own)."""

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        limits = [self.tenant, self.user, *self.tenants.values()]
        return any(lim.tokens is not None or lim.requests is not None for lim in limits)

    def limits_of(self, tenant_id: str) -> QuotaLimits:
        """Return the limits of ``tenant_id``."""
        return self.tenants.get(tenant_id, self.tenant)
