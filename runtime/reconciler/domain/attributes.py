"""The attribute and key names of the reconciler's table items, each defined once.

The domain reads items by these names (a Credits stream image, a user's threshold overrides), the adapters write
and read them, the infrastructure keys its tables and filters its stream by them, and the operators' tools name
them; all but the domain take them from `reconciler.contract`, which re-exports every one (the domain imports no
module outside it). Outside the adapters (repository/) no module spells one as a literal
(tests/unit/test_contract_names.py).
"""

from __future__ import annotations

# Keys shared by several tables: Jobs and Settlements are keyed by jobId, Credits and UserLedger by userId (so is
# Ledger's by-user index, sorted by timestamp), Ledger by ledgerId.
USER_ID_ATTRIBUTE = "userId"
JOB_ID_ATTRIBUTE = "jobId"
LEDGER_ID_ATTRIBUTE = "ledgerId"
TIMESTAMP_ATTRIBUTE = "timestamp"
# UserLedger-{stage}: the job postings, keyed by user with a time-ordered sort key (docs/ledger.md), so one
# user's history is a Query of the table itself and a posting writes no index.
USER_LEDGER_SORT_KEY = "entryKey"
# BalanceEvents-{stage}: partition key userId, sort key eventKey (service/ports.py balance_event_key says what it holds).
BALANCE_EVENT_KEY = "eventKey"

# Credits items: `remaining` is what the user can spend; `held` the credits held for open reservations.
# Posted balance (what the ledger sums to) = remaining + held. updatedAt is the moment of the last balance write.
REMAINING_ATTRIBUTE = "remaining"
HELD_ATTRIBUTE = "held"
UPDATED_AT_ATTRIBUTE = "updatedAt"
# Every balance write of the reconciler adds 1 to the item's version, and one that books a Ledger entry (an
# adjustment, a correction) names it in lastLedgerEntry: an operator's repair is conditioned on the version it read
# (so of two concurrent repairs one applies and the other audits again), and an audit whose read of Ledger's
# by-user index lacks lastLedgerEntry knows the index has not caught up yet.
VERSION_ATTRIBUTE = "version"
LAST_LEDGER_ENTRY_ATTRIBUTE = "lastLedgerEntry"
# An `audit --fix` that sets a balance records on the item who, when, why and the figures it replaced.
LAST_AUDIT_FIX_ATTRIBUTE = "lastAuditFix"
# Credits in (docs/events.md, "Credits in"): a purchase's, grant's or revocation's Ledger entry carries its category,
# the money behind it (amountPaid, an exact number, with its currency) and the payment a revocation takes back, each
# only when it has a value (no other entry carries them).
CATEGORY_ATTRIBUTE = "category"
AMOUNT_PAID_ATTRIBUTE = "amountPaid"
CURRENCY_ATTRIBUTE = "currency"
PAYMENT_REFERENCE_ATTRIBUTE = "paymentReference"
# And how it was applied, so that Lambda's retry of the invocation that wrote it (same request id) answers as that
# invocation did (its overdraft alerted and counted) instead of as a duplicate: the request, whether it overdrew, and
# the balance a failed guard returned (when one did).
APPLIED_BY_REQUEST_ATTRIBUTE = "appliedByRequest"
OVERDRAFT_ATTRIBUTE = "overdraft"
BALANCE_BEFORE_ATTRIBUTE = "appliedBalanceBefore"
# A purchase's or grant's expiry (ISO-8601 UTC) on its Ledger entry, and the marker that keeps the entry in the sparse
# expiring-credits index (partition expiryPending, sort expiresAt) until its expiry is booked; the moment its
# `credits.expiring` notice went out (set once).
CREDIT_EXPIRES_AT_ATTRIBUTE = "expiresAt"
EXPIRY_PENDING_ATTRIBUTE = "expiryPending"
EXPIRY_PENDING_VALUE = "PENDING"
EXPIRING_NOTICE_ATTRIBUTE = "expiringNoticeAt"
# The Credits item's running totals of what came in by category (domain/liability.py), added by the credits-in
# transaction's balance update: purchases less refunds and chargebacks, promotional grants, goodwill grants.
PAID_CREDITS_ATTRIBUTE = "paidCredits"
PROMOTIONAL_CREDITS_ATTRIBUTE = "promotionalCredits"
GOODWILL_CREDITS_ATTRIBUTE = "goodwillCredits"
# Every balance write of the reconciler also sets lastChange, in the same update: the net change it made to each money
# attribute it moved (MONEY_ATTRIBUTES; absent: 0) and what made it ("by": the job or Ledger entry id, a digest when
# long). The Credits stream explains a record by it alone (domain/unexplained.py): version up by one and every money
# attribute moved by exactly its recorded change.
LAST_CHANGE_ATTRIBUTE = "lastChange"
CHANGE_BY_KEY = "by"
MONEY_ATTRIBUTES = (REMAINING_ATTRIBUTE, HELD_ATTRIBUTE, PAID_CREDITS_ATTRIBUTE, PROMOTIONAL_CREDITS_ATTRIBUTE, GOODWILL_CREDITS_ATTRIBUTE)
# Attributes of the Credits item a user's balance-event thresholds may be overridden with (docs/events.md).
LOW_OVERRIDE_ATTRIBUTE = "lowBalanceThreshold"
OVERDRAFT_OVERRIDE_ATTRIBUTE = "overdraftAlertLevel"

# Jobs items: the attribute that puts a job in the sparse unsettled index (the pipeline writes it, settlement removes
# it), and how a reservation made on the item before settlement records was made: reservedAs = "hold" (held on the
# balance, nothing posted); without it, posted to the ledger (the v2 model) and settled as it was made.
UNSETTLED_ATTRIBUTE = "unsettled"
UNSETTLED_VALUE = "PENDING"
CREATED_AT_ATTRIBUTE = "createdAt"  # the unsettled index's sort key
# The attributes of a Jobs item that belong to the pipeline (docs/pipeline.md): all it may write (its role's
# dynamodb:Attributes). The settlement's mirror, reservations and conflicts are the reconciler's.
PIPELINE_JOB_ATTRIBUTES: tuple[str, ...] = (
    JOB_ID_ATTRIBUTE,
    USER_ID_ATTRIBUTE,
    "model",
    "status",
    CREATED_AT_ATTRIBUTE,
    UPDATED_AT_ATTRIBUTE,
    "seconds",
    "failureReason",
    UNSETTLED_ATTRIBUTE,
)
RESERVED_AS_ATTRIBUTE = "reservedAs"
HOLD = "hold"

# Settlements items holding an open hold carry holdUser (its user), which puts them in the sparse open-holds index
# (partition holdUser, sort heldAt).
HOLD_USER_ATTRIBUTE = "holdUser"
HELD_AT_ATTRIBUTE = "heldAt"
# A hold's expiry (ISO-8601 UTC, set when it is made) and, when the timer scan released it at that moment, the
# reason its hold was released (HOLD_EXPIRED); the pipeline's own release leaves no reason.
HOLD_EXPIRES_AT_ATTRIBUTE = "holdExpiresAt"
HOLD_RELEASED_BY_ATTRIBUTE = "holdReleasedBy"
HOLD_EXPIRED = "expiry"
