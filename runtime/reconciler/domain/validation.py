"""What the reconciler accepts as an id, a credit amount or a duration: one set of rules for every writer.

Events, the timer scan, `reserve()` and the CLI's adjustments all validate through here, so nothing can be
held, stored or charged that settlement would later refuse. The bounds come from what DynamoDB can store
(38 significant digits, magnitude 1E-130 to 9.99E+125; keys bounded in bytes of UTF-8) and what Python converts
safely (4,300 digits).
"""

from __future__ import annotations

import hashlib
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Underflow
from typing import Any

from reconciler.domain.errors import InvalidEvent

MAX_ID_LENGTH = 256
# DynamoDB bounds keys in bytes of UTF-8, not characters: a partition key 2,048 bytes, a sort key 1,024 (AWS
# DynamoDB developer guide, "Service, account, and table quotas": partition and sort key length). The tightest key
# an id goes into is UserLedger's sort key, `{timestamp}#{ledgerId}` (25 bytes of timestamp and separator) around a
# ledger id that wraps the id (`job:{n}:{jobId}:release`, `adjustment:{n}:{reference}`: at most 16 bytes today).
# An id may take 768 bytes, so every key built from one keeps 231 bytes to spare for what wraps it: any id of
# 256 characters of one to three bytes fits, of four-byte characters (emoji, rare CJK) 192.
# tests/unit/domain/test_identifiers.py builds every key and derived id from ids at this limit.
MAX_ID_BYTES = 768
SORT_KEY_MAX_BYTES = 1024
PARTITION_KEY_MAX_BYTES = 2048
# A trillion credits: larger than any real balance, far inside DynamoDB's 38 digits even summed over years.
MAX_CREDITS = 10**12
# DynamoDB's number type (AWS DynamoDB developer guide, "Supported data types and naming rules", Number): up to 38
# significant digits; positive range 1E-130 to 9.9999999999999999999999999999999999999E+125, negative the same.
# boto3's serializer context (Emin -128, Emax 126) is wider: it lets 1E+126 and exact subnormals down to about
# 1E-165 through, which DynamoDB refuses, so the range is checked as DynamoDB states it, not as boto3 allows it.
DYNAMODB_NUMBER_CONTEXT = Context(prec=38, Emin=-128, Emax=126, traps=[Inexact, Overflow, Underflow, InvalidOperation])
DYNAMODB_SMALLEST_MAGNITUDE = Decimal("1E-130")
DYNAMODB_LARGEST_MAGNITUDE = Decimal("9.9999999999999999999999999999999999999E+125")


def identifier(field: str, value: Any) -> str:
    """An id: 1 to 256 printable characters and at most 768 bytes of UTF-8 (no lone surrogates), not only blanks."""
    if value is None:
        raise InvalidEvent(field, "is missing")
    if not isinstance(value, str):
        raise InvalidEvent(field, f"must be a string, got {type(value).__name__}")
    if not value.strip() or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise InvalidEvent(field, f"must be 1 to {MAX_ID_LENGTH} printable characters")
    if not is_utf8_encodable(value):  # isprintable() refuses surrogates today; this keeps it explicit
        raise InvalidEvent(field, "must be valid Unicode text (no lone surrogates)")
    size = len(value.encode("utf-8"))
    if size > MAX_ID_BYTES:
        raise InvalidEvent(field, f"must be at most {MAX_ID_BYTES} bytes of UTF-8, got {size} (DynamoDB bounds the keys built from it in bytes)")
    return value


def is_identifier(value: Any) -> bool:
    try:
        identifier("id", value)
    except InvalidEvent:
        return False
    return True


def derived_identifier(prefix: str, base: str) -> str:
    """An id made from another (a corrected replay's `corrected:{id}`, the timer scan's `timer-scan:{jobId}`):
    the prefix and the id when that is itself a valid id, else the prefix and a digest of the id, so that a
    derived id always fits wherever an id goes and is the same every time it is derived."""
    candidate = prefix + base
    if is_identifier(candidate):
        return candidate
    return f"{prefix}sha256:{hashlib.sha256(base.encode('utf-8', 'surrogatepass')).hexdigest()}"


def whole_credits(field: str, value: Any, *, allow_negative: bool = False) -> int:
    """A whole number of credits, 1 to MAX_CREDITS (or its negative when allowed); never a bool or a fraction."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise InvalidEvent(field, f"must be a whole number of credits, got {type(value).__name__}")
    number = value if isinstance(value, int) else _finite(field, value)
    if number != int(number):
        raise InvalidEvent(field, f"must be a whole number of credits, got {value}")
    number = int(number)
    if number == 0 or abs(number) > MAX_CREDITS or (number < 0 and not allow_negative):
        low = -MAX_CREDITS if allow_negative else 1
        raise InvalidEvent(field, f"must be between {low} and {MAX_CREDITS}{' and not 0' if allow_negative else ''}")
    return number


def storable_decimal(field: str, value: Decimal) -> Decimal:
    """The value unchanged if DynamoDB can store it exactly, else InvalidEvent (instead of boto3's Inexact, or
    DynamoDB's ValidationException for what boto3 lets through)."""
    refused = InvalidEvent(field, "cannot be stored exactly (DynamoDB keeps 38 significant digits, magnitude 1E-130 to 9.99E+125)")
    try:
        stored = DYNAMODB_NUMBER_CONTEXT.create_decimal(value)
    except (Inexact, Overflow, Underflow, InvalidOperation):
        raise refused from None
    # copy_abs, not abs(): abs() rounds to the thread's context (28 digits) and would push 38 nines past the bound.
    if not stored.is_finite() or (stored and not DYNAMODB_SMALLEST_MAGNITUDE <= stored.copy_abs() <= DYNAMODB_LARGEST_MAGNITUDE):
        raise refused
    return stored


def whole_number_problem(value: Any) -> str | None:
    """What is wrong with a stored figure that must be a whole number (DynamoDB returns numbers as Decimal), or
    None when it is one or absent (a missing figure counts as 0)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return None
    kind = "a boolean" if isinstance(value, bool) else "a fraction" if isinstance(value, Decimal) else type(value).__name__
    return f"must be a whole number, got {str(value)[:40]!r} ({kind})"


def _finite(field: str, value: Decimal) -> Decimal:
    if not value.is_finite():
        raise InvalidEvent(field, f"must be finite, got {value}")
    return value


def is_utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_text(text: str, limit: int) -> str:
    """Free text (a failure reason) cut to `limit` characters, with what UTF-8 cannot hold replaced."""
    cut = text[:limit]
    return cut if is_utf8_encodable(cut) else cut.encode("utf-8", "replace").decode("utf-8")
