"""Checked by mypy in `make gate`, never run: each implementation of a port satisfies its Protocol.

runtime/reconciler/bootstrap.py holds the AWS adapters to the ports the same way; this file does it for the
in-memory fakes (tests/fakes.py), which the service tier uses in their place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.service.ports import DeadLetters, SettlementStore
    from tests.fakes import InMemoryDeadLetters, InMemorySettlementStore

    def _fakes_implement_the_ports(store: InMemorySettlementStore, letters: InMemoryDeadLetters) -> tuple[SettlementStore, DeadLetters]:
        return store, letters
