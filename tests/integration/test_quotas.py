"""Quotas (app/server/quotas.py) on both usage stores: SQLite and a real Redis.

One suite over both backends: requests and tokens counted per tenant and per user, a
429 ``insufficient_quota`` with ``Retry-After`` once a limit is used up, a refused
request not counted, usage shown and reset, and concurrent increments never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, Counter

from app.config.billing import ModelPrice, QuotaLimits, QuotaSettings
from app.server.errors import ApiError
from app.server.quota_store import RedisUsageStore, SqliteUsageStore, UsageStore
from app.server.quotas import Quotas, price_calls
from tests.servers import redis_server

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    user_id: str


ALICE = Caller("acme", "alice")
BOB = Caller("acme", "bob")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> AsyncIterator[UsageStore]:
    made: UsageStore
    if request.param == "sqlite":
        made = SqliteUsageStore(tmp_path / "server.sqlite")
    else:
        with redis.Redis.from_url(redis_url) as client:
            client.flushdb()
        made = RedisUsageStore(redis_url)
    yield made
    await made.aclose()


REGISTRY = CollectorRegistry()
REFUSALS = Counter("refusals", "quota refusals", ["scope", "limit"], registry=REGISTRY)


def _refused(scope: str, limit: str) -> float:
    value = REGISTRY.get_sample_value("refusals_total", {"scope": scope, "limit": limit})
    return value or 0.0


async def test_requests_past_the_tenant_limit_are_refused_until_reset(store: UsageStore) -> None:
    before = _refused("tenant", "requests")
    quotas = Quotas(QuotaSettings(tenant=QuotaLimits(requests=2)), store, refusals=REFUSALS)
    await quotas.admit(ALICE)
    await quotas.admit(BOB)  # one tenant: both users count
    with pytest.raises(ApiError) as refused:
        await quotas.admit(ALICE)
    error = refused.value
    assert (error.status, error.code, error.kind) == (
        429,
        "insufficient_quota",
        "insufficient_quota",
    )
    assert "2 requests per day for tenant 'acme'" in error.message
    assert 1 <= int(error.headers["Retry-After"]) <= 86_400
    assert _refused("tenant", "requests") == before + 1
    assert (await quotas.usage("acme"))["requests"] == 2  # the refused one is not counted
    assert await quotas.reset("acme") == 1  # no user limit: only the tenant is counted
    await quotas.admit(ALICE)


async def test_tokens_of_every_call_count_and_the_next_turn_is_refused(store: UsageStore) -> None:
    quotas = Quotas(QuotaSettings(tenant=QuotaLimits(tokens=100)), store)
    await quotas.admit(ALICE)
    calls = [
        {"role": "router", "model": "m", "total_tokens": 30},
        {"role": "answer", "model": "m", "total_tokens": 50},
        {"role": "memory", "model": "m", "total_tokens": 25},
    ]
    assert await quotas.charge(ALICE, calls) == 105
    usage = await quotas.usage("acme")
    assert (usage["requests"], usage["tokens"]) == (1, 105)
    assert usage["users"] == []  # no user limit: users are not counted
    with pytest.raises(ApiError, match="100 model tokens per day"):
        await quotas.admit(BOB)


async def test_a_user_limit_leaves_other_users_alone(store: UsageStore) -> None:
    quotas = Quotas(QuotaSettings(user=QuotaLimits(requests=1), period="hour"), store)
    await quotas.admit(ALICE)
    with pytest.raises(ApiError, match="per hour for this user"):
        await quotas.admit(ALICE)
    await quotas.admit(BOB)
    users = {row["user"]: row["requests"] for row in (await quotas.usage("acme"))["users"]}
    assert users == {"alice": 1, "bob": 1}
    assert await quotas.reset("acme", "alice") == 1
    await quotas.admit(ALICE)


async def test_concurrent_increments_are_not_lost(store: UsageStore) -> None:
    quotas = Quotas(QuotaSettings(tenant=QuotaLimits(tokens=10**9)), store)
    await asyncio.gather(*(quotas.charge(ALICE, [{"total_tokens": 7}]) for _ in range(50)))
    assert (await quotas.usage("acme"))["tokens"] == 350


async def test_named_tenants_get_their_own_limits(store: UsageStore) -> None:
    settings = QuotaSettings(
        tenant=QuotaLimits(requests=1), tenants={"acme": QuotaLimits(requests=3)}
    )
    quotas = Quotas(settings, store)
    for _ in range(3):
        await quotas.admit(ALICE)
    with pytest.raises(ApiError):
        await quotas.admit(ALICE)


def test_each_call_is_priced_by_its_own_model() -> None:
    prices = {
        "big": ModelPrice(input_per_1m=3.0, output_per_1m=15.0),
        "small": ModelPrice(input_per_1m=0.5, output_per_1m=1.5),
    }
    calls = [
        {"model": "small", "prompt_tokens": 1000, "completion_tokens": 10},
        {"model": "big", "prompt_tokens": 2000, "completion_tokens": 500},
        {"model": "offline", "prompt_tokens": 0, "completion_tokens": 0},
    ]
    total = price_calls(calls, prices)
    assert [c["cost"] for c in calls] == [0.000515, 0.0135, 0.0]
    assert total == pytest.approx(0.014015)
    assert price_calls([{"model": "big"}], {}) is None
