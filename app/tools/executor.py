"""Run approved tool calls under rate limits and timeouts, and audit every call."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

from langchain_core.messages import AIMessage, ToolCall, ToolMessage

from app.safety.identity import safe_identity
from app.settings import Settings, ToolPolicy
from app.tools.audit import AuditRecord, AuditSink, redact_args
from app.tools.catalog import ALL_TOOLS
from app.tools.context import CALLER, ToolContext
from app.tools.policy import resolve_policies
from app.tools.ratelimit import RateLimiter
from app.tools.registry import ToolRegistry
from app.tools.risk import Outcome, risk_of

__all__ = ["Toolbox"]

_OFFERED = 64
"""Tool subsets whose toolbox is kept (requests usually name a few)."""


class Toolbox:
    """The registry plus policies, rate limits and the audit trail of one deployment.

    Args:
        settings: The deployment's settings (``tools``, ``limits``, ``data_dir``).
        registry: The tools offered to the model.
    """

    def __init__(self, settings: Settings, registry: ToolRegistry) -> None:
        """Resolve policies and connect the limiter and the audit sink."""
        cfg = settings.tools
        self.settings = settings
        self.registry = registry
        known = {t.name: risk_of(t) for t in ALL_TOOLS}
        known |= {name: registry.risk(name) for name in registry.names}
        self.risks = known
        self.policies = resolve_policies(known, cfg.policies)
        self.limiter = RateLimiter(cfg.rate_limit_storage, cfg.rate_limit_per_user, cfg.rate_limits)
        self.audit = AuditSink(
            None if cfg.audit_redis_url else cfg.audit_path or settings.data_dir / "audit.jsonl",
            redis_url=cfg.audit_redis_url,
            max_records=cfg.audit_max_records,
        )
        self._offered: dict[frozenset[str], Toolbox] = {}

    def offering(self, names: Collection[str] | None) -> Toolbox:
        """This toolbox with only the named tools offered; None keeps every tool.

        Names the registry does not hold are ignored; the registry's order is kept. The
        toolbox of each set of names is built once (the last 64 sets).
        """
        if names is None:
            return self
        key = frozenset(names).intersection(self.registry.names)
        box = self._offered.get(key)
        if box is None:
            registry = ToolRegistry([t for t in self.registry.tools if t.name in key])
            box = Toolbox(self.settings, registry)
            if len(self._offered) >= _OFFERED:
                del self._offered[next(iter(self._offered))]
            self._offered[key] = box
        return box

    def policy(self, name: str) -> ToolPolicy:
        """Return a tool's policy; unknown names go on to the registry, which lists the tools."""
        return self.policies.get(name, "allow")

    async def record(
        self,
        call: ToolCall,
        caller: ToolContext,
        outcome: Outcome,
        *,
        thread: str,
        started: float,
        approved: bool = False,
        recovered: str | None = None,
    ) -> None:
        """Write the audit record of one call (``recovered``: the format it was read from)."""
        await self.audit.write(
            AuditRecord(
                tenant=safe_identity(caller.tenant_id),
                user=safe_identity(caller.user_id),
                thread=safe_identity(thread),
                tool=call.get("name", ""),
                risk=self.risks.get(call.get("name", ""), "unknown"),
                call_id=call.get("id") or "",
                args=redact_args(call.get("args", {})),
                outcome=outcome,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
                approved_by_user=approved,
                recovered_from_text=recovered,
            )
        )

    async def refuse(
        self,
        call: ToolCall,
        caller: ToolContext,
        outcome: Outcome,
        text: str,
        *,
        thread: str,
        recovered: str | None = None,
    ) -> ToolMessage:
        """Answer a call that is not run (denied, rejected, stopped) and audit it."""
        await self.record(
            call, caller, outcome, thread=thread, started=time.perf_counter(), recovered=recovered
        )
        return ToolMessage(
            content=text,
            tool_call_id=call.get("id") or "",
            name=call.get("name", ""),
            status="error",
            response_metadata={"outcome": outcome},
        )

    async def run(
        self,
        call: ToolCall,
        caller: ToolContext,
        *,
        timeout_s: float,
        thread: str,
        approved: bool = False,
        recovered: str | None = None,
    ) -> ToolMessage:
        """Rate-limit, validate and run one call with a timeout and an output cap; audit it.

        ``recovered`` names the format the model wrote the call in as text, when it was
        recovered from there (:mod:`app.llm.tool_recovery`); the audit record keeps it.
        """
        started = time.perf_counter()
        name = call.get("name", "")
        if name in self.registry:
            refusal = await self.limiter.acquire(caller.tenant_id, caller.user_id, name)
            if refusal is not None:
                await self.record(
                    call,
                    caller,
                    "rate_limited",
                    thread=thread,
                    started=started,
                    recovered=recovered,
                )
                return ToolMessage(
                    content=refusal,
                    tool_call_id=call.get("id") or "",
                    name=name,
                    status="error",
                    response_metadata={"outcome": "rate_limited"},
                )
        message = await self.registry.execute(
            call,
            timeout_s=timeout_s,
            max_output_chars=self.settings.tools.max_output_chars,
            inject={CALLER: caller},
        )
        outcome = message.response_metadata.get("outcome", "error")
        await self.record(
            call,
            caller,
            outcome,
            thread=thread,
            started=started,
            approved=approved,
            recovered=recovered,
        )
        return message

    async def stop(
        self,
        calls: Sequence[ToolCall],
        caller: ToolContext,
        reason: str,
        *,
        thread: str,
        recovered: str | None = None,
    ) -> list[ToolMessage | AIMessage]:
        """End the run: answer every pending call as not run, then give the final message."""
        answers: list[ToolMessage | AIMessage] = [
            await self.refuse(
                call, caller, "stopped", f"Not run: {reason}", thread=thread, recovered=recovered
            )
            for call in calls
        ]
        return [*answers, AIMessage(content=reason, response_metadata={"stopped": True})]
