"""`make demo` is the README's first command: it must run end to end and exit 0."""

import pytest

from reconciler.local import demo

pytestmark = pytest.mark.server


def test_the_demo_settles_its_event_stream_and_the_books_balance(capsys):
    # Given the demo's users, holds and event stream; When it runs
    assert demo.main() == 0
    text = " ".join(capsys.readouterr().out.split())  # rich wraps long lines at the console's width
    # Then a reservation shows as a hold: remaining moves to held, the posted balance stays
    assert "job-a1: held 20 credits of alice on standard-v1: remaining 80, held 20, posted 100" in text
    # And once every job is settled nothing is held, and each posted balance is its ledger's sum (both tables)
    assert "alice: remaining 82, held 0, posted 82 (ledger sum 82)" in text
    assert "carol: remaining -7, held 0, posted -7 (ledger sum -7)" in text
    assert "Every posted balance (remaining + held) equals its opening balance plus its ledger entries, and every held its open reservations." in text
    assert "3 dead-lettered with their reason" in text
