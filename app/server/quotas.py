"""Quotas on model tokens and requests per tenant and user, and the cost of a turn.

:meth:`Quotas.admit` runs before a turn calls any model: it counts the request and
refuses it (429 ``insufficient_quota``, ``Retry-After`` the end of the window) when the
tenant or the user is past a limit. :meth:`Quotas.charge` adds the tokens every model
call of the turn reported (``usage.calls``: the answer, the router, memory, summaries,
repairs). A turn may finish past the token limit; the next one is refused.

The cost of a turn is priced per model call from ``server.prices``, so a turn whose
calls went to several models is priced call by call.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any, Protocol

from prometheus_client import Counter

from app.config.billing import PERIOD_S, ModelPrice, QuotaLimits, QuotaSettings
from app.observability.tracing import annotate
from app.server.api_metrics import Metrics
from app.server.errors import ApiError
from app.server.quota_store import Usage, UsageStore

__all__ = ["Quotas", "count_cost", "price_calls", "subjects_of"]

log = logging.getLogger("ragent.server")


class Holder(Protocol):
    """Whose quota a turn counts against: a principal, or a run's context."""

    @property
    def tenant_id(self) -> str:
        """The tenant."""
        ...

    @property
    def user_id(self) -> str:
        """The user (an end user's own id, when a request acts for one)."""
        ...


def subjects_of(tenant_id: str, user_id: str | None = None) -> list[str]:
    """The counters a tenant (and one of its users) are kept under."""
    subjects = [f"tenant:{tenant_id}"]
    if user_id is not None:
        subjects.append(f"user:{tenant_id}/{user_id}")
    return subjects


class Quotas:
    """Admits and charges turns against ``server.quota``."""

    def __init__(
        self, settings: QuotaSettings, store: UsageStore, *, refusals: Counter | None = None
    ) -> None:
        """Count in ``store`` under ``settings``' limits.

        ``refusals`` counts 429s by ``scope`` (tenant, user) and ``limit`` (tokens, requests).
        """
        self.settings = settings
        self.store = store
        self.period_s = PERIOD_S[settings.period]
        self.refusals = refusals

    def window(self, now: float | None = None) -> tuple[int, float]:
        """Return the current window and the seconds until it ends."""
        now = time.time() if now is None else now
        window = int(now // self.period_s)
        return window, (window + 1) * self.period_s - now

    def _limited(self, principal: Holder) -> list[tuple[str, str, QuotaLimits]]:
        tenant, user = subjects_of(principal.tenant_id, principal.user_id)
        limited = [
            ("tenant", tenant, self.settings.limits_of(principal.tenant_id)),
            ("user", user, self.settings.user),
        ]
        return [x for x in limited if x[2].tokens is not None or x[2].requests is not None]

    async def admit(self, principal: Holder) -> None:
        """Count one request, or refuse it when the tenant or user is over quota.

        Raises:
            ApiError: 429 ``insufficient_quota`` with ``Retry-After``.
        """
        window, left_s = self.window()
        counted: list[str] = []
        try:
            for scope, subject, limits in self._limited(principal):
                used = await self.store.add(subject, window, requests=1, ttl_s=self._ttl())
                counted.append(subject)
                over = _over(used, limits)
                if over is not None:
                    raise self._refusal(principal, scope, over, limits, left_s)
        except ApiError:
            for subject in counted:  # a refused request does not count
                await self.store.add(subject, window, requests=-1, ttl_s=self._ttl())
            raise

    async def charge(self, principal: Holder, calls: Iterable[Mapping[str, Any]]) -> int:
        """Add the tokens of a turn's model calls; returns how many."""
        tokens = sum(int(c.get("total_tokens", 0) or 0) for c in calls)
        limited = self._limited(principal)
        if tokens <= 0 or not limited:
            return tokens
        window, _ = self.window()
        for _, subject, _ in limited:
            await self.store.add(subject, window, tokens=tokens, ttl_s=self._ttl())
        return tokens

    async def usage(self, tenant_id: str) -> dict[str, Any]:
        """Return a tenant's usage in the current window, its users' too, and the limits.

        Only limited subjects are counted: with no limit set, every count is 0.
        """
        window, left_s = self.window()
        tenant, users_prefix = subjects_of(tenant_id)[0], f"user:{tenant_id}/"
        own = (await self.store.counts(window, tenant)).get(tenant, Usage())
        users = await self.store.counts(window, users_prefix)
        limits, user_limits = self.settings.limits_of(tenant_id), self.settings.user
        return {
            "tenant": tenant_id,
            "period": self.settings.period,
            "resets_in_s": max(1, math.ceil(left_s)),
            "requests": own.requests,
            "tokens": own.tokens,
            "limits": limits.model_dump(),
            "user_limits": user_limits.model_dump(),
            "users": [
                {"user": subject.removeprefix(users_prefix), **asdict(used)}
                for subject, used in users.items()
            ],
        }

    async def reset(self, tenant_id: str, user_id: str | None = None) -> int:
        """Zero the current window's usage of a user, or of a tenant and all its users.

        Returns:
            How many counters were reset.
        """
        window, _ = self.window()
        if user_id is not None:
            return await self.store.reset(window, subjects_of(tenant_id, user_id)[1:])
        users = await self.store.counts(window, f"user:{tenant_id}/")
        return await self.store.reset(window, [*subjects_of(tenant_id), *users])

    def _ttl(self) -> int:
        return self.period_s * 2

    def _refusal(
        self, principal: Holder, scope: str, over: str, limits: QuotaLimits, left_s: float
    ) -> ApiError:
        if self.refusals is not None:
            self.refusals.labels(scope, over).inc()
        wait = max(1, math.ceil(left_s))
        limit = limits.tokens if over == "tokens" else limits.requests
        holder = f"tenant {principal.tenant_id!r}" if scope == "tenant" else "this user"
        return ApiError(
            429,
            f"quota of {limit} {'model tokens' if over == 'tokens' else 'requests'} per "
            f"{self.settings.period} for {holder} is used up; it renews in {wait} s",
            "insufficient_quota",
            kind="insufficient_quota",
            headers={"Retry-After": str(wait)},
        )


def _over(used: Usage, limits: QuotaLimits) -> str | None:
    """Which limit a request counted into ``used`` breaks: ``requests``, ``tokens`` or None."""
    if limits.requests is not None and used.requests > limits.requests:
        return "requests"
    if limits.tokens is not None and used.tokens >= limits.tokens:
        return "tokens"
    return None


_warned: set[str] = set()


def price_calls(calls: list[dict[str, Any]], prices: Mapping[str, ModelPrice]) -> float | None:
    """Put each call's ``cost`` on it and return the turn's; None without a price table.

    A model missing from the table costs 0 (logged once per model name).
    """
    if not prices:
        return None
    total = 0.0
    for call in calls:
        price = prices.get(str(call.get("model", "")))
        cost = 0.0
        if price is None:
            if call.get("model") not in _warned:
                _warned.add(str(call.get("model")))
                log.warning("no price for model %r: its calls cost 0", call.get("model"))
        else:
            cost = (
                int(call.get("prompt_tokens", 0)) * price.input_per_1m
                + int(call.get("completion_tokens", 0)) * price.output_per_1m
            ) / 1_000_000
        call["cost"] = round(cost, 10)
        total += cost
    return round(total, 10)


def count_cost(metrics: Metrics, calls: Iterable[Mapping[str, Any]]) -> float | None:
    """Count priced calls' cost in the metrics and on the current span; returns the turn's."""
    priced = [c for c in calls if "cost" in c]
    if not priced:
        return None
    for call in priced:
        metrics.cost.labels(str(call.get("model", ""))).inc(float(call["cost"]))
    total = sum(float(c["cost"]) for c in priced)
    metrics.request_cost.observe(total)
    annotate(cost=total)
    return total
