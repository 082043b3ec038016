"""Heuristic detection of prompt-injection and jailbreak attempts.

The rules are deliberately narrow: each needs an instruction-like phrase aimed
at the assistant, not just a suspicious word, so ordinary questions about
instructions, system requirements or git ignore files pass. Text is normalised
first so that simple obfuscation (full-width letters, zero-width characters,
Cyrillic look-alikes, odd spacing) does not slip through.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["detect_injection"]

# Cyrillic and Greek letters that render like Latin ones (after casefolding), and the
# typographic apostrophe ("what's").
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x",
        "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ɡ": "g",
        "\u2019": "'", "α": "a", "ε": "e", "ι": "i", "ο": "o", "ν": "v", "τ": "t", "κ": "k",
    }
)  # fmt: skip
_HSPACE = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n\s*")


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    # Category Cf holds zero-width spaces/joiners, soft hyphens and bidi controls.
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.casefold().translate(_CONFUSABLES)
    # Newlines are kept (collapsed) because role markers are recognised at line starts.
    return _NEWLINES.sub("\n", _HSPACE.sub(" ", text)).strip()


_IGNORE_VERB = r"\b(?:ignore|disregard|forget|bypass|override|overlook|discard|abandon)"
_QUALIFIER = (
    r"(?:previous|previously|prior|above|earlier|preceding|foregoing|former|original|"
    r"initial|system|your|developer|safety)"
)
_RULE_NOUN = (
    r"(?:instructions?|rules?|prompts?|directives?|guidelines?|guardrails?|restrictions?|"
    r"polic(?:y|ies)|programming|constraints?|system\s+messages?)\b"
)
_IGNORE = re.compile(
    rf"{_IGNORE_VERB}\s+(?:(?:all|any|every|each|the|of|these|those|its)\s+){{0,3}}"
    rf"{_QUALIFIER}\s+(?:[\w-]+\s+){{0,2}}?{_RULE_NOUN}"
    rf"|{_IGNORE_VERB}\s+(?:all|any)\s+(?:of\s+)?(?:the\s+)?"
    r"(?:instructions|directives|guidelines|guardrails|prompts)\b"
    rf"|{_IGNORE_VERB}\s+(?:everything|anything|all|what)\s+(?:(?:that\s+)?(?:above|before|prior)\b"
    r"|(?:that\s+)?you\s+(?:were|have\s+been|are)\s+(?:told|taught|instructed|given))"
)

_REVEAL_VERB = (
    r"\b(?:reveal|print|show|display|repeat|leak|output|dump|expose|disclose|recite|echo|"
    r"share|paste|tell|give|write\s+out|spell\s+out|type\s+out)\s+(?:(?:me|us|back)\s+)?"
)
# Verbs that only count when the object is plainly the hidden prompt ("translate your
# system prompt"), since "summarise your instructions" may mean an earlier answer.
_REWORK_VERB = (
    r"\b(?:translate|encode|reproduce|transcribe|quote|copy|summari[sz]e|paraphrase|"
    r"read\s+(?:out|back))\s+(?:(?:me|us)\s+)?"
)
_SECRET_ADJ = (
    r"(?:hidden|secret|initial|original|internal|confidential|system|developer|previous|"
    r"above|preceding|full|entire|complete|exact|verbatim|first|real|actual)"
)
_SECRET = r"(?:hidden|secret|initial|original|internal|confidential|system|developer)"
# "the system prompt option", "your prompt in zsh": settings and shells, not the assistant.
_NOT_THE_ASSISTANTS = (
    r"(?!\s+(?:option|flag|setting|parameter|field|variable|argument|feature|file|template"
    r"|in\s+(?:bash|zsh|fish|powershell|the\s+(?:shell|terminal))))"
)
_YOUR_PROMPT = (
    rf"your\s+(?:{_SECRET_ADJ}\s+){{0,3}}"
    r"(?:prompt|pre-?prompt|instructions|directives|guidelines|rules|system\s+message)\b"
    rf"{_NOT_THE_ASSISTANTS}"
)
_THE_PROMPT = (
    rf"(?:the\s+)?(?:{_SECRET_ADJ}\s+){{0,2}}{_SECRET}\s+(?:prompt|instructions|directives|message)\b"
    rf"{_NOT_THE_ASSISTANTS}"
)
_TOLD = r"(?:told|instructed|programmed|prompted|given|taught)"
_REVEAL = re.compile(
    rf"{_REVEAL_VERB}(?:all\s+(?:of\s+)?)?(?:{_YOUR_PROMPT}|{_THE_PROMPT})"
    rf"|{_REWORK_VERB}(?:all\s+(?:of\s+)?)?(?:your\s+|the\s+)(?:{_SECRET_ADJ}\s+){{0,2}}"
    r"(?:(?:system|initial|hidden|secret|original|developer)\s+(?:prompt|instructions|message)"
    r"|prompt|pre-?prompt|system\s+message)\b"
    rf"{_NOT_THE_ASSISTANTS}"
    # "print the text of your system message", "show a copy of the initial instructions"
    rf"|{_REVEAL_VERB}(?:(?:the|a)\s+)?(?:(?:full|entire|exact|complete|verbatim|raw|whole)\s+)?"
    rf"(?:text|content|contents|wording|words|copy|transcript)\s+of\s+(?:{_YOUR_PROMPT}|{_THE_PROMPT})"
    rf"|{_REVEAL_VERB}(?:all\s+(?:of\s+)?)?(?:the\s+)?(?:words|text|everything|content|contents)"
    r"\s+(?:(?:that\s+)?(?:is|was|were|are)\s+)?(?:(?:written|said|stated|shown)\s+)?(?:above|before)\b"
    rf"|{_REVEAL_VERB}(?:all\s+(?:of\s+)?)?(?:the\s+)?(?:lines|messages?|instructions)\s+above"
    r"\s+(?:this|my)\b"
    r"|\bwhat\s+(?:is|are|was|were)\s+your\s+"
    r"(?:(?:system|initial|original|hidden|secret|developer|internal|real|actual|exact)\s+)?"
    r"(?:prompt|pre-?prompt|instructions|directives|system\s+message)\b"
    r"|\bwhat(?:'s|\s+is)\s+(?:in|inside)\s+(?:your|the)\s+(?:system\s+|initial\s+|hidden\s+)?"
    r"(?:prompt|system\s+message)\b"
    rf"{_NOT_THE_ASSISTANTS}"
    r"|\bwhat\s+(?:does|did)\s+(?:your\s+(?:\w+\s+)?|the\s+(?:system|initial|hidden|secret)\s+)"
    r"(?:prompt|instructions|system\s+message|message)\s+(?:say|said|contain|tell\s+you)\b"
    rf"|\bwhat\s+(?:exactly\s+)?(?:were|have)\s+you\s+(?:been\s+)?{_TOLD}"
    r"(?=\s*(?:[.?!:]|$|before\b|initially\b|at\s+the\s+(?:start|beginning)\b|to\s+(?:do|say|never|always|not)\b"
    r"|by\s+(?:your|the)\s+(?:developers?|creators?|system|operators?|company)\b))"
    rf"|{_REVEAL_VERB}(?:exactly\s+)?what\s+you\s+(?:were|have\s+been)\s+{_TOLD}\b"
    rf"|\bwhat\s+(?:instructions|rules|directives|guidelines|prompt)\s+(?:were|have)\s+you\s+"
    rf"(?:been\s+)?{_TOLD}\b"
    rf"|{_REVEAL_VERB}(?:all\s+(?:of\s+)?)?(?:the\s+)?(?:instructions|prompt|rules|directives|guidelines)"
    rf"\s+(?:that\s+)?you\s+(?:(?:were|have\s+been)\s+{_TOLD}|got|received)\b"
)

_RESTRICTION_NOUN = (
    r"(?:restrictions|limitations|limits|filters|rules|guidelines|censorship|constraints|"
    r"ethics|morals|policies|boundaries|guardrails)"
)
_JAILBREAK = re.compile(
    r"\bdo\s+anything\s+now\b|\bdan\s+mode\b|\bjailbreak(?:en)?\s+mode\b"
    r"|\b(?:you\s+are|you're|act\s+as|pretend\s+to\s+be|become)\s+(?:now\s+)?(?:a\s+)?dan\b"
    r"|\b(?:enable|enter|activate|switch\s+to)\s+(?:dan|god|jailbreak|unrestricted|unfiltered)"
    r"\s+mode\b"
    r"|\b(?:act\s+as|pretend|simulate|you\s+are\s+now|you're\s+now|from\s+now\s+on,?\s+you)"
    r"\b[^.!?\n]{0,60}?\bdeveloper\s+mode\b"
    r"|\b(?:chatgpt|gpt|assistant|ai|llm|model)\s+(?:with|in)\s+developer\s+mode\b"
    # "You are now ready to ..." is benign; a persona ("an AI", "in ... mode") is not.
    r"|\b(?:(?:you\s+are\s+now|you're\s+now|now\s+you\s+are)\s+(?=(?:an?|in|the|my|\w+gpt)\b)|"
    r"from\s+now\s+on,?\s+you(?:\s+are|\s+will)?|you\s+will\s+now|you\s+must\s+now)"
    r"\b[^.!?\n]{0,80}?"
    rf"(?:\b(?:without|free\s+(?:from|of)|with\s+no|not\s+bound\s+by)\s+(?:any\s+)?"
    rf"{_RESTRICTION_NOUN}|\b(?:unfiltered|uncensored|unrestricted|jailbroken|amoral)\b)"
    r"|\byou(?:\s+are|'re)\s+no\s+longer\s+(?:bound|restricted|limited|constrained)\b"
    r"|\b(?:(?:act|behave|respond|answer|reply|roleplay|role-play)\s+(?:as|like)"
    r"|pretend\s+(?:to\s+be|you\s+are|you're))\s+(?:an?\s+)?(?:[\w-]+\s+){0,2}?"
    r"(?:unfiltered|uncensored|unrestricted|unaligned|jailbroken|amoral|unethical|evil)\b"
)

_DIRECTIVE_START = (
    r"(?:you|your|ignore|disregard|forget|from\s+now|new|override|always|never|do\s+not|"
    r"don't|must|respond|answer|reply|act|pretend|reveal|the\s+assistant|the\s+user)\b"
)
_ROLE_MARKER = re.compile(
    r"<\|(?:im_start|im_end|system|assistant|endoftext|start_header_id|end_header_id|eot_id)\|>"
    r"|\[/?inst\]|<</?sys>>|<\s*/?\s*system\s*>"
    r"|(?:^|\n)#{1,6}\s*system(?:\s+(?:prompt|message))?\s*:?\s*(?:\n|$)"
    rf"|(?:^|\n|[.!?]\s)\s*(?:#{{1,6}}\s*)?(?:system|developer)\s*:\s*{_DIRECTIVE_START}"
)

_NEW_INSTRUCTIONS = re.compile(
    r"\b(?:new|real|actual|true|secret|hidden|override)\s+(?:system\s+)?"
    r"(?:instructions?|directives?|rules|prompt|task)\s*:"
)


def detect_injection(text: str) -> str | None:
    """Say whether ``text`` looks like a prompt-injection or jailbreak attempt.

    Args:
        text: A user message, or any untrusted text about to reach the model.

    Returns:
        A short reason fit for a log line or a refusal message, such as
        ``"it asks to ignore previous instructions"``, or ``None`` when nothing
        suspicious was found.
    """
    norm = _normalise(text)
    if _ROLE_MARKER.search(norm):
        return "it contains a fake role marker (e.g. 'system:' or '[INST]')"
    if _IGNORE.search(norm):
        return "it asks to ignore previous instructions"
    if _REVEAL.search(norm):
        return "it asks to reveal the system prompt or hidden instructions"
    if _JAILBREAK.search(norm):
        return "it attempts a role-play jailbreak to lift restrictions"
    if _NEW_INSTRUCTIONS.search(norm):
        return "it tries to override the instructions with new ones"
    return None
