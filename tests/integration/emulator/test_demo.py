"""`make demo` is the README's first command: it must run end to end and exit 0."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.server, pytest.mark.long]

CHECKOUT = Path(__file__).resolve().parents[3]


def test_the_demo_settles_its_event_stream_and_the_books_balance(tmp_path, dev_templates):
    # dev_templates: the stage in the session's synthesis cache before the demo starts, so that its `emulator up` reads
    # it there (emulator/stack.py, templates_for) instead of synthesizing it again (a long test starts first).
    # Given the demo's users, holds and event stream; When it runs as `make demo` runs it (a script over the public
    # commands: `python -m emulator up`, the `reconciler` CLI, the hold function and EventBridge)
    environment = {**os.environ, "COLUMNS": "200"}  # rich wraps at the terminal's width
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "RECONCILER_STAGE"):
        environment.pop(name, None)
    done = subprocess.run([sys.executable, "scripts/demo.py"], cwd=CHECKOUT, capture_output=True, text=True, timeout=600, env=environment)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = " ".join(done.stdout.split())
    # Then a reservation shows as a hold: remaining moves to held, the posted balance stays
    assert "job-a1: held 20 credits of alice on standard-v1: remaining 80, held 20, posted 100" in text
    # And carol's hold is refused, moving nothing
    assert "job-c1: insufficient, nothing moved (40 asked, balance 5)" in text
    # And once every job is settled nothing is held, and each posted balance is its ledger's sum (both tables)
    assert "alice: remaining 82, held 0, posted 82 (ledger sum 82)" in text
    assert "carol: remaining -7, held 0, posted -7 (ledger sum -7)" in text
    assert "Every posted balance (remaining + held) equals its opening balance plus its ledger entries, and every held its open reservations." in text
    assert "9 events, 3 dead-lettered with their reason" in text
    # And the top-up of carol, overdrawn, restored her: the balance-events function published it
    assert "credits.restored" in text
    # And credits in: the purchase delivered twice applied once, a grant, a refund
    assert "pi_demo_1 │ applied │ balance +500" in text and "pi_demo_1 │ duplicate" in text
    assert "dave: remaining 430 (500 once, + 50, - 120)" in text
    # And the direct write caught as unexplained (its alarm), undone; the statement and the liability
    assert "alarm cc-reconciler-unexplained-balance-changes-dev: ALARM after" in text
    assert "undone: reconciler --local audit dave --fix --trust ledger --> remaining 430" in text
    assert "│ credits │ paid │ +500 │ purchase:9:pi_demo_1 │" in text and "│ debits │ refund │ -120 │ revocation:9:re_demo_1 │" in text
    assert ": agrees" in text
