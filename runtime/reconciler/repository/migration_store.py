"""The takeover's reads and its one write (`reconciler migrate`, ops/migration.py): never on the event path.

Jobs items are read raw (v1 leaves items that v2's JobRecord need not accept), and a job v1 settled gets its
settlement record by a put conditioned on there being none, so a run stopped anywhere can simply run again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reconciler.repository.dynamodb import from_item, to_item
from reconciler.repository.dynamodb_operations import OperationsStore
from reconciler.service.ports import AmbiguousWrite, StaleState


class MigrationStore(OperationsStore):
    def scan_jobs(self) -> Iterator[dict[str, Any]]:
        """Every Jobs item as stored (strongly consistent pages)."""
        for item in self._paginate("scan", {"TableName": self.jobs_table, "ConsistentRead": True}):
            yield from_item(item)

    def get_job_item(self, job_id: str) -> dict[str, Any] | None:
        item = self._call("get_item", TableName=self.jobs_table, Key=to_item({"jobId": job_id}), ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def put_cutover_mark(self, job_id: str, user_id: str, settled_as: str, settled_by: str, settled_at: str, provenance: dict[str, Any]) -> bool:
        """The settlement record of a job v1 settled (nothing charged, released or refunded), with who marked it, when
        and why (`provenance`); False when the job has a record already (an earlier run's mark, or v2's own
        settlement) or the answer was lost (the caller reads the record to tell which)."""
        item = {
            "jobId": job_id,
            "userId": user_id,
            "settledAs": settled_as,
            "settledAt": settled_at,
            "settledByEvent": settled_by,
            "heldCredits": 0,
            "chargedCredits": 0,
            "releasedCredits": 0,
            "refundedCredits": 0,
            "settledBefore": "v1",
            **provenance,
        }
        try:
            self._write(
                "put_item",
                TableName=self.settlements_table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(jobId)",
            )
        except (StaleState, AmbiguousWrite):
            return False
        return True
