"""Input and output safety checks: PII/secret redaction and prompt-injection detection."""

from app.safety.injection import detect_injection
from app.safety.pii import KINDS, Finding, find_pii, redact

__all__ = ["KINDS", "Finding", "detect_injection", "find_pii", "redact"]
