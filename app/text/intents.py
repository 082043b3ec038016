"""Cheap intent rules on a user's question: arithmetic, unit conversion, time, follow-ups."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "asks_for_time",
    "find_arithmetic",
    "find_conversion",
    "find_timezone",
    "standalone_question",
]

_WORD = re.compile(r"\w+")

_ARITH_RUN = re.compile(r"[0-9.\s()+\-*/^%]+")
_BINARY_OP = re.compile(r"[\d)]\s*(?:\*\*|[-+*/^%])\s*[\d(]")
_DATE_LIKE = re.compile(r"^\d{1,4}([-/])\d{1,2}\1\d{1,4}$")
_ARITH_CUE = re.compile(r"\b(?:calculate|compute|evaluate|solve|what\s+is|what's|how\s+much)\b|=")


def find_arithmetic(question: str) -> str | None:
    """Find the first arithmetic expression in a question.

    An expression is a run of numbers, parentheses and the operators ``+ - * / ^ ** %``
    with at least one binary operator. ``^`` is rewritten as ``**``. Runs that are only
    hyphen- or slash-joined numbers without spaces (dates, ranges such as "10-20") count
    only when the question has a cue such as "calculate" or "what is"; date-like runs
    (``2024-01-15``) never count.

    Args:
        question: The user's question.

    Returns:
        The expression, or None when the question contains none.
    """
    if not _BINARY_OP.search(question):
        # Every expression holds a binary operator between operands, and an expression
        # is a part of the question: without one, the runs (every space is one) are
        # not worth trimming.
        return None
    for match in _ARITH_RUN.finditer(question):
        expr = re.sub(r"^(?:[^\d(-]|-(?![\d(]))+|[^\d)]+$", "", match.group())
        while expr.count("(") > expr.count(")") and expr.startswith("("):
            expr = re.sub(r"^\(\s*", "", expr)
        while expr.count(")") > expr.count("(") and expr.endswith(")"):
            expr = re.sub(r"\s*\)$", "", expr)
        if expr.count("(") != expr.count(")") or not _BINARY_OP.search(expr):
            continue
        if _DATE_LIKE.match(expr):
            continue
        ops = set(re.findall(r"\*\*|[-+*/^%]", expr))
        if ops <= {"-", "/"} and " " not in expr and not _ARITH_CUE.search(question.lower()):
            continue
        return expr.replace("**", "^").replace("^", "**")
    return None


_TIME_QUESTION = re.compile(
    r"\bwhat\s+time\s+is\s+it\b"
    r"|\bwhat\s+(?:day|date)\s+is\s+(?:it|today)\b"
    r"|\btoday'?s\s+date\b"
    r"|\b(?:current|local)\s+(?:date\s+and\s+time|time|date)\b(?!\s+(?:complexity|zone|format))"
    r"|\bwhat(?:'s|\s+is)\s+the\s+(?:time|date)\b(?:\s+(?:now|today|right\s+now|in\s+\S+))?"
    r"\s*[?.!]*$"
    r"|\btime\s+(?:is\s+it\s+)?(?:right\s+)?now\b",
    re.IGNORECASE,
)
_TIMEZONE = re.compile(
    r"\b(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)"
    r"/[A-Za-z_\-]+(?:/[A-Za-z_\-]+)?"
    r"|\b(?:UTC|GMT)\b",
    re.IGNORECASE,
)


def asks_for_time(question: str) -> bool:
    """Tell whether a question asks for the current time or date.

    Args:
        question: The user's question.

    Returns:
        True for questions such as "what time is it?", "what's the date today?" or
        "current time in Europe/Paris"; False for e.g. "what is the time complexity".
    """
    text = question.strip().replace("\u2019", "'")
    return _TIME_QUESTION.search(text) is not None


def find_timezone(question: str) -> str | None:
    """Find an IANA time zone name ("Europe/Paris", "UTC") in a question.

    Args:
        question: The user's question.

    Returns:
        The zone with canonical capitalisation when the question was written in lower
        case, or None when there is none.
    """
    match = _TIMEZONE.search(question)
    if match is None:
        return None
    zone = match.group()
    if zone.upper() in {"UTC", "GMT"}:
        return zone.upper()
    if zone.islower():
        zone = "/".join(
            "_".join(part[:1].upper() + part[1:] for part in piece.split("_"))
            for piece in zone.split("/")
        )
    return zone


_NOTE_REQUEST = re.compile(
    r"^\s*(?:please\s+)?(?:save|take|make|create|add|write(?:\s+down)?|jot(?:\s+down)?)\s+"
    r"(?:me\s+)?(?:a\s+|this\s+|the\s+following\s+)?note\b\s*"
    r"(?:(?:that|saying|to\s+self)\b\s*:?|[:\-\u2013\u2014])\s*(?P<text>\S.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
# A note about the conversation itself (its sources, instructions, prompt) is no note the
# user dictates: that is what an injected instruction asks for, to carry data out.
_NOTE_ABOUT_ITSELF = re.compile(
    r"\b(?:sources?|documents?|instructions?|prompts?|system|retriev\w*|context|"
    r"everything|every(?:thing)?\s+\w+\s+(?:you|i)\b)",
    re.IGNORECASE,
)
_NOTE_TITLE_WORDS = 8


def find_note_request(question: str) -> tuple[str, str] | None:
    """Find an explicit request to save a note, such as "Save a note: buy oat milk".

    Args:
        question: The user's message.

    Returns:
        ``(title, text)``: the text to save and a title made of its first words; None when
        the message does not ask for a note in so many words ("Save a note: ...", "Take a
        note that ..."), or asks to note the conversation's own sources or instructions.
    """
    match = _NOTE_REQUEST.match(question)
    if match is None or _NOTE_ABOUT_ITSELF.search(match.group("text")):
        return None
    text = match.group("text").strip().rstrip(".!")
    if not text:
        return None
    words = text.split()
    title = " ".join(words[:_NOTE_TITLE_WORDS]) + (" ..." if len(words) > _NOTE_TITLE_WORDS else "")
    return title[:200], text[:4000]


_FOLLOW_UP = re.compile(
    r"\b(it|its|this|that|these|those|they|them|their|he|she|there|the same)\b", re.IGNORECASE
)


def standalone_question(questions: Sequence[str]) -> str:
    """Return the last question, made standalone for retrieval and answering.

    A short or anaphoric follow-up ("and how big is it?") is joined to the
    previous question, so "it" can be resolved lexically.

    Args:
        questions: The user's messages in a thread, oldest first.

    Returns:
        The last question, possibly prefixed by the one before it.
    """
    if not questions:
        return ""
    question = questions[-1]
    if len(questions) >= 2 and needs_context(question):
        return f"{questions[-2]} {question}"
    return question


def needs_context(question: str) -> bool:
    """Return whether a question is a follow-up that :func:`standalone_question` extends.

    Anaphora ("it", "that", "there") or fewer than four words; any other question is
    its own retrieval query, whatever came before it.
    """
    return bool(_FOLLOW_UP.search(question)) or len(_WORD.findall(question)) < 4


# Canonical pint unit -> (what it measures, its names as users write them). Single letters
# ("c", "f", "m") are safe only because both units must name the same quantity.
_UNITS: dict[str, tuple[str, str]] = {
    "mile": ("length", "mile|miles|mi"),
    "km": ("length", "km|kms|kilometer|kilometers|kilometre|kilometres"),
    "m": ("length", "m|meter|meters|metre|metres"),
    "cm": ("length", "cm|centimeter|centimeters|centimetre|centimetres"),
    "mm": ("length", "mm|millimeter|millimeters|millimetre|millimetres"),
    "ft": ("length", "ft|foot|feet"),
    "inch": ("length", "inch|inches"),  # not "in": it is the preposition
    "yard": ("length", "yard|yards|yd|yds"),
    "nautical_mile": ("length", "nautical mile|nautical miles|nmi"),
    "kg": ("mass", "kg|kgs|kilo|kilos|kilogram|kilograms|kilogramme|kilogrammes"),
    "g": ("mass", "g|gram|grams|gramme|grammes"),
    "mg": ("mass", "mg|milligram|milligrams"),
    "lb": ("mass", "lb|lbs|pound|pounds"),
    "oz": ("mass", "oz|ounce|ounces"),
    "stone": ("mass", "stone|stones"),
    "tonne": ("mass", "tonne|tonnes|metric ton|metric tons"),
    "ton": ("mass", "ton|tons|short ton|short tons"),
    "degC": (
        "temperature",
        "c|°c|degc|deg c|celsius|centigrade|degree c|degrees c|degree celsius|degrees celsius",
    ),
    "degF": (
        "temperature",
        "f|°f|degf|deg f|fahrenheit|degree f|degrees f|degree fahrenheit|degrees fahrenheit",
    ),
    "kelvin": ("temperature", "k|kelvin|kelvins|degrees kelvin"),
    "liter": ("volume", "l|liter|liters|litre|litres"),
    "ml": ("volume", "ml|milliliter|milliliters|millilitre|millilitres"),
    "gallon": ("volume", "gal|gallon|gallons"),
    "quart": ("volume", "qt|quart|quarts"),
    "pint": ("volume", "pint|pints"),
    "cup": ("volume", "cup|cups"),
    "floz": ("volume", "floz|fl oz|fluid ounce|fluid ounces"),
    "mile/hour": ("speed", "mph|mi/h|miles per hour|mile per hour|miles an hour"),
    "km/hour": ("speed", "km/h|kph|kmh|km per hour|kilometers per hour|kilometres per hour"),
    "m/s": ("speed", "m/s|meters per second|metres per second"),
    "knot": ("speed", "knot|knots|kn|kt|kts"),
    "B": ("data", "b|byte|bytes"),
    "kB": ("data", "kb|kilobyte|kilobytes"),
    "MB": ("data", "mb|megabyte|megabytes"),
    "GB": ("data", "gb|gigabyte|gigabytes"),
    "TB": ("data", "tb|terabyte|terabytes"),
    "KiB": ("data", "kib|kibibyte|kibibytes"),
    "MiB": ("data", "mib|mebibyte|mebibytes"),
    "GiB": ("data", "gib|gibibyte|gibibytes"),
    "TiB": ("data", "tib|tebibyte|tebibytes"),
    "bit": ("data", "bit|bits"),
    "ms": ("time", "ms|millisecond|milliseconds"),
    "second": ("time", "s|sec|secs|second|seconds"),
    "minute": ("time", "min|mins|minute|minutes"),
    "hour": ("time", "h|hr|hrs|hour|hours"),
    "day": ("time", "day|days"),
    "week": ("time", "week|weeks"),
    "year": ("time", "year|years"),
    "acre": ("area", "acre|acres"),
    "hectare": ("area", "ha|hectare|hectares"),
    "ft**2": ("area", "ft2|ft²|sq ft|square foot|square feet"),
    "m**2": ("area", "m2|m²|sq m|square meter|square meters|square metre|square metres"),
    "km**2": ("area", "km2|km²|sq km|square kilometer|square kilometers|square kilometres"),
    "J": ("energy", "j|joule|joules"),
    "kJ": ("energy", "kj|kilojoule|kilojoules"),
    "cal": ("energy", "cal|calorie|calories"),
    "kcal": ("energy", "kcal|kilocalorie|kilocalories"),
    "kWh": ("energy", "kwh|kilowatt hour|kilowatt hours|kilowatt-hour|kilowatt-hours"),
    "W": ("power", "w|watt|watts"),
    "kW": ("power", "kw|kilowatt|kilowatts"),
    "hp": ("power", "hp|horsepower"),
    "Pa": ("pressure", "pa|pascal|pascals"),
    "kPa": ("pressure", "kpa|kilopascal|kilopascals"),
    "bar": ("pressure", "bar|bars"),
    "psi": ("pressure", "psi"),
    "atm": ("pressure", "atm|atmosphere|atmospheres"),
}
_ALIASES = {alias: unit for unit, (_, names) in _UNITS.items() for alias in names.split("|")}
# Longest first, so "fl oz" wins over "oz" and "km/h" over "km"; spaces match any run.
_UNIT = "|".join(
    re.escape(alias).replace(r"\ ", r"\s+") for alias in sorted(_ALIASES, key=len, reverse=True)
)
_NUMBER = r"(?<![\w.,/-])(?P<value>-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)"
_SOURCE = rf"{_NUMBER}\s*(?P<source>{_UNIT})(?![\w/²])"
_TARGET = rf"(?P<target>{_UNIT})(?![\w/²])"
_CONVERSIONS = [
    # "convert 5 miles to km", "what is 100 F in C", "3 kg as pounds"
    re.compile(rf"{_SOURCE}\s+(?:to|into|in|as|in\s+terms\s+of|expressed\s+in)\s+{_TARGET}"),
    # "how many pounds is 3 kg", "how many feet are in a mile"
    re.compile(
        rf"\bhow\s+many\s+{_TARGET}\s+(?:(?:is|are)\s+(?:there\s+)?(?:in\s+)?|in\s+|make\s+(?:up\s+)?"
        rf"|equals?\s+|=\s*)(?:(?P<one>an?|one)\s+(?P<unit>{_UNIT})(?![\w/²])|{_SOURCE})"
    ),
    # "3 kg is how many pounds"
    re.compile(rf"{_SOURCE}\s+(?:is|are|equals?|=)\s+how\s+many\s+{_TARGET}"),
]


def find_conversion(question: str) -> tuple[float, str, str] | None:
    """Find a unit-conversion request in a question.

    Recognised forms are "convert 5 miles to km", "what is 100 F in C", "how many
    pounds is 3 kg", "how many feet are in a mile" and "3 kg is how many pounds". Both
    units must be known (lengths, masses, temperatures, volumes, speeds, data sizes,
    durations, areas, energies, powers, pressures) and measure the same thing.

    Args:
        question: The user's question.

    Returns:
        ``(value, from_unit, to_unit)`` with the units as pint names (``"mile"``,
        ``"km"``, ``"degF"``), ready for the ``convert_units`` tool; None when the
        question asks for no conversion.
    """
    text = question.casefold().replace("\u2212", "-").replace("º", "°")
    for pattern in _CONVERSIONS:
        for match in pattern.finditer(text):
            found = match.groupdict()
            source = found.get("source") or found["unit"]
            value = 1.0 if found.get("one") else float(found["value"].replace(",", ""))
            from_unit = _ALIASES[" ".join(source.split())]
            to_unit = _ALIASES[" ".join(found["target"].split())]
            if _UNITS[from_unit][0] == _UNITS[to_unit][0]:
                return value, from_unit, to_unit
    return None
