"""The ``server`` section: the HTTP API's auth, limits and state."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from app.config.billing import ModelPrice, QuotaSettings
from app.config.oidc import OidcSettings
from app.config.section import Section

__all__ = ["ServerSettings"]


class ServerSettings(Section):
    """The HTTP API (``ragent serve``): auth, limits, and where its state lives."""

    auth: bool = True
    """Refuse requests without a valid API key; ``ragent serve --no-auth`` turns it off."""
    oidc: OidcSettings | None = None
    """Also accept JWTs of this OpenID Connect provider as bearer tokens; None: keys only."""
    quota: QuotaSettings = QuotaSettings()
    """Per-tenant and per-user limits on model tokens and requests per period."""
    prices: dict[str, ModelPrice] = Field(default_factory=dict, max_length=1000)
    """Model name -> price per million input and output tokens; a turn's cost is
    reported as ``usage.cost`` and counted in ``ragent_cost_total``. Empty: no cost."""
    redis_url: str | None = None
    """None: keys and the thread list in ``<data_dir>/server.sqlite``, and rate limits,
    idempotency records, stream events and jobs in this process. Set: all of them in
    Redis, shared by every replica."""
    rate_limit: str = "120/minute"
    """Per API key, as a token bucket: this rate refills it, ``rate_burst`` holds. A key
    with the ``end_users`` scope has one bucket per end user instead (the front end
    behind it is trusted to name its users)."""
    rate_burst: int | None = Field(default=None, ge=1)
    """Bucket size (requests allowed at once); None: the amount of ``rate_limit``."""
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    """Largest JSON body."""
    max_upload_bytes: int = Field(default=100_000_000, ge=1024)
    """Largest ``POST /v1/ingest`` body (all files together)."""
    max_upload_files: int = Field(default=50, ge=1)
    request_timeout_s: float = Field(default=120.0, gt=0)
    """A request that has not started its response by then gets a 504."""
    idempotency_ttl_s: int = Field(default=86_400, ge=1)
    events_ttl_s: int = Field(default=600, ge=1)
    """How long a stream's events stay after its last one, for ``Last-Event-ID`` replay
    (and streamed idempotent retries); in this process they take memory meanwhile."""
    jobs_ttl_s: int = Field(default=7 * 86_400, ge=1)
    ingest_queue: bool = False
    """Run ``POST /v1/ingest`` jobs in ``ragent worker`` processes fed by a Redis stream
    (needs ``redis_url``): the uploaded bytes travel through Redis and no file is kept on
    the API's disk. False: each API process runs its own jobs, one at a time."""
    ingest_max_attempts: int = Field(default=3, ge=1, le=20)
    """Deliveries of a queued job (a worker that fails or dies on it counts one) before
    it goes to the dead-letter stream and fails."""
    ingest_claim_idle_s: float = Field(default=60.0, ge=1, le=3600)
    """A queued job whose worker has not renewed its hold for this long (it died or gave
    up) is taken by another worker; a live worker renews every third of it."""
    ingest_url_allowlist: list[str] = Field(default_factory=list)
    """Hosts (``host`` or ``host:port``) ``POST /v1/ingest`` may fetch; empty refuses URLs."""
    end_user_headers: list[str] = Field(
        default_factory=lambda: ["X-Ragent-User", "X-OpenWebUI-User-Id"], max_length=8
    )
    """Headers that name the end user a request acts for, first found wins, as the
    ``user`` field does; heeded for keys with the ``end_users`` scope only, refused (400)
    from other keys. ``X-OpenWebUI-User-Id`` is what Open WebUI sends with
    ``ENABLE_FORWARD_USER_INFO_HEADERS=true``."""
    citation_format: Literal["markers", "footer", "annotations"] = "markers"
    """How ``/v1/chat/completions`` answers show their sources, unless a request's
    ``citation_format`` says: ``markers`` (the ``[S1]`` labels only), ``footer`` (a
    markdown Sources list after the answer, which front ends such as Open WebUI render)
    or ``annotations`` (OpenAI's ``url_citation`` annotations on the message)."""
    cors_origins: list[str] = Field(default_factory=list, max_length=32)
    """Browser origins allowed to call the API (CORS), such as LangGraph Studio's
    ``https://smith.langchain.com``; empty allows none (no CORS headers)."""
    workers: int = Field(default=1, ge=1, le=64)
    """Processes ``ragent serve`` runs (uvicorn workers sharing the port). More than one
    needs ``redis_url``: each worker's memory would otherwise hold its own rate limits,
    idempotency records, stream events and jobs."""

    @model_validator(mode="after")
    def _valid_rate(self) -> ServerSettings:
        from limits import parse

        try:
            parse(self.rate_limit)
        except ValueError:
            raise ValueError(
                f"rate_limit: {self.rate_limit!r} is not a rate such as '120/minute'"
            ) from None
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        if self.ingest_queue and self.redis_url is None:
            raise ValueError("ingest_queue needs redis_url (RAGENT_SERVER_REDIS_URL)")
        if self.workers > 1 and self.redis_url is None:
            raise ValueError(
                f"workers: {self.workers} workers need redis_url (RAGENT_SERVER_REDIS_URL): "
                "rate limits, idempotency records, stream events and jobs must be shared"
            )
        return self
