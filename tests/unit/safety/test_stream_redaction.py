"""A streamed reply is redacted exactly like the whole reply, however it was split."""

from __future__ import annotations

import random

import pytest

from app.safety import find_pii, redact
from app.safety.stream import StreamRedactor

PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nqk9Zx\n-----END RSA PRIVATE KEY-----"
)
# Every kind the guard knows, in the shapes its tests use, each inside a sentence.
EXAMPLES = [
    "Write to john.doe@example.com for access.",
    "Mail a.b-c+tag@mail.example.co.uk, then x@y.io.",
    "Call +44 20 7946 0958 today.",
    "Call +1 (415) 555-2671 or +49 30 1234567 now.",
    "The desk is (415) 555-2671, the lab 415.555.2671.",
    "In London dial 020 7946 0958, in Paris 06 12 34 56 78.",
    "Card 4111 1111 1111 1111 expires soon.",
    "Pay with 4111-1111-1111-1111 or 4111111111111111.",
    "Amex 3782 822463 10005 works too.",
    "SSN 123-45-6789 is on file.",
    "Send it to IBAN DE89 3704 0044 0532 0130 00 please.",
    "Or GB82WEST12345698765432 for the UK.",
    "Use key sk-abc123def456ghi789jkl012mno for it.",
    "AWS AKIAIOSFODNN7EXAMPLE leaked.",
    "Token ghp_" + "a1B2" * 9 + " works.",
    "PAT github_pat_11ABCDEFG0123456789_abcdefghijkl here.",
    "Slack xoxb-1234567890-abcdefghij here.",
    "JWT eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x end.",
    "Header Authorization: Bearer abcdef123456ghijkl please.",
    'Set password = "hunter two three" and api_key: xyz987 now.',
    "DB_PASSWORD=s3cr3t; session_token='tok en 1'.",
    f"The key:\n{PRIVATE_KEY}\nends here.",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC and it never ends",
    "Card 4111 1111 1111 1111 123 and 4111 1111 1111 then 1111.",
    "Numbers 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20.",
    "Version 1.2.3-4 of 2024-01-15 at 10:30, order #12345.",
    "a@b.com.x and x@1.1.1.1.1.1.com ok",
]


def streamed(text: str, cuts: list[int]) -> tuple[str, list[str]]:
    """The joined output of a redactor fed ``text`` cut at ``cuts``, and each piece out."""
    redactor = StreamRedactor()
    pieces, prev = [], 0
    for cut in [*cuts, len(text)]:
        pieces.append(redactor.feed(text[prev:cut]))
        prev = cut
    pieces.append(redactor.flush())
    return "".join(pieces), pieces


@pytest.mark.parametrize("text", EXAMPLES)
def test_every_split_point_gives_the_whole_texts_redaction(text: str) -> None:
    assert find_pii(text) or "Numbers" in text or "Version" in text
    want = redact(text)[0]
    for cut in range(len(text) + 1):
        assert streamed(text, [cut])[0] == want, cut
    assert streamed(text, list(range(1, len(text))))[0] == want  # one character at a time


@pytest.mark.parametrize("seed", range(4))
def test_random_splits_of_mixed_text_give_the_whole_texts_redaction(seed: int) -> None:
    rng = random.Random(seed)
    noise = "0123456789 -.+()@abcXYZ:=\"'\nsk_/"
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.5:
                parts.append(rng.choice(EXAMPLES))
            else:
                parts.append("".join(rng.choice(noise) for _ in range(rng.randint(1, 25))))
        text = "".join(parts)
        size = rng.choice([1, 2, 3, 5, 8])
        cuts = list(range(size, len(text), size))
        assert streamed(text, cuts)[0] == redact(text)[0], (text, size)


@pytest.mark.parametrize("seed", range(3))
def test_random_runs_of_numbers_give_the_whole_texts_redaction(seed: int) -> None:
    rng = random.Random(seed)
    valid = ["4111 1111 1111 1111", "+44 20 7946 0958", "(415) 555-2671", "123-45-6789"]
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(3, 40)):
            if rng.random() < 0.15:
                parts.append(rng.choice(valid))
            else:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 6))))
            parts.append(rng.choice([" ", " ", "-", ".", ", ", "\n", "+", "("]))
        text = "".join(parts)
        size = rng.choice([1, 2, 3, 4, 7])
        cuts = list(range(size, len(text), size))
        assert streamed(text, cuts)[0] == redact(text)[0], (text, size)


def test_a_long_run_of_numbers_is_held_back_only_near_its_end() -> None:
    # Every four groups match the card pattern, most fail its checksum: those are no
    # finding, so the overlapping matches must not hold the whole run back.
    text = " ".join(str(n) for n in range(1000, 2000))
    want = redact(text)[0]
    redactor = StreamRedactor()
    sent = "".join(redactor.feed(text[i : i + 4]) for i in range(0, len(text), 4))
    assert len(want) - len(sent) <= 200
    assert sent + redactor.flush() == want


def test_no_piece_ever_holds_raw_personal_data() -> None:
    secrets = ["john.doe@example.com", "7946 0958", "4111 1111 1111 1111", "sk-abc123def456"]
    text = " ".join(EXAMPLES[:14])
    _, pieces = streamed(text, list(range(1, len(text))))
    sent = ""
    for piece in pieces:
        sent += piece
        assert not any(s in sent for s in secrets)
        assert not find_pii(sent)


def test_prose_streams_with_only_the_last_word_held() -> None:
    redactor = StreamRedactor()
    assert redactor.feed("The staging cluster is rebu") == "The staging cluster is "
    assert redactor.feed("ilt every Tues") == "rebuilt every "
    assert redactor.feed("day at noon.") == "Tuesday at "
    assert redactor.flush() == "noon."


def test_what_may_become_personal_data_is_held_until_it_is_decided() -> None:
    redactor = StreamRedactor()
    assert redactor.feed("Call +44 20 7946") == "Call "
    assert redactor.feed(" 0958") == ""
    assert redactor.feed(" now and later.") == ""  # a digit group may still follow
    assert redactor.flush() == "[PHONE] now and later."
    redactor = StreamRedactor()
    assert redactor.feed('password: "hunter two') == ""
    assert redactor.feed(' three" ok ') == ""
    assert redactor.flush() == 'password: "[SECRET]" ok '


def test_an_unterminated_private_key_is_never_sent() -> None:
    redactor = StreamRedactor()
    out = redactor.feed("Key: -----BEGIN PRIVATE KEY-----\n")
    for _ in range(50):
        out += redactor.feed("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n")
    assert out == "Key: "
    assert redactor.flush() == "[SECRET]"


def test_a_long_plain_reply_is_held_back_by_its_last_word_only() -> None:
    text = "The staging cluster is rebuilt every Tuesday at 04:00 UTC by platform. " * 200
    redactor = StreamRedactor()
    out = "".join(redactor.feed(text[i : i + 4]) for i in range(0, len(text), 4))
    assert len(text) - len(out) < 20  # held: the last word only
    assert out + redactor.flush() == text
