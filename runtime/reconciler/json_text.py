"""json.dumps for values that came from outside: integers of any length included.

Python 3.11 refuses to turn an int of more than 4,300 digits into text (a ValueError inside json.dumps), and
an event may carry one. Such integers are written through Decimal, which has no such limit, so the text is
the number exactly as it arrived. Small enough to keep on the event path without a dependency.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

# Python's default limit is 4,300 digits; 13,000 bits stays safely below it.
_SAFE_BITS = 13_000


def dumps(value: Any, **options: Any) -> str:
    tokens: dict[str, str] = {}
    nonce = uuid.uuid4().hex

    def walk(item: Any) -> Any:
        if isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > _SAFE_BITS:
            token = f"big-{nonce}-{len(tokens)}"
            tokens[token] = str(Decimal(item))
            return token
        if isinstance(item, dict):
            return {key: walk(child) for key, child in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(child) for child in item]
        return item

    text = json.dumps(walk(value), **options)
    for token, digits in tokens.items():
        text = text.replace(f'"{token}"', digits)
    return text
