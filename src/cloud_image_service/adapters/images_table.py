"""DynamoDB adapter for image metadata. Every call on the images table lives here.

Table layout: partition key `image_id` (S). Global secondary index `by_user`:
partition key `user_id`, sort key `created_at` (fixed-width ISO-8601 text, so it
sorts by time), projection ALL. A user's list is a `Query` on that index, newest
first; only an unfiltered cross-user list is a (paginated) `Scan`. A sparse index
`due_by_time` (`due_shard`, `due_at`) holds only records the sweep must act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.admitted_write import put_with_hit
from cloud_image_service.adapters.clients import conditional_write, error_code, raise_unavailable
from cloud_image_service.adapters.items import (
    DUE_AT,
    DUE_SHARD,
    DUE_SHARDS,
    TTL_ATTRIBUTE,
    due_shard,
    from_item,
    shard_key,
    to_item,
    typed_value,
)
from cloud_image_service.adapters.listing import list_page
from cloud_image_service.adapters.rate_counter import CounterHit
from cloud_image_service.adapters.tables import enable_ttl, ensure_images_table
from cloud_image_service.domain.errors import Conflict
from cloud_image_service.domain.models import Image, ListQuery, Page, Status
from cloud_image_service.domain.ports import Admission

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef

log = logging.getLogger(__name__)

BACKEND = "DynamoDB"
DUE_INDEX = "due_by_time"
_CLAIM_ATTRIBUTES = ("claim_token", "claim_until")

Expected = Status | tuple[Status, ...]


def _status_condition(expected: Expected) -> tuple[str, dict[str, Any]]:
    statuses = (expected,) if isinstance(expected, Status) else expected
    marks = [f":expected{i}" for i in range(len(statuses))]
    values = {mark: {"S": s.value} for mark, s in zip(marks, statuses, strict=True)}
    return f"#status IN ({', '.join(marks)})", values


class ImageCatalog:
    """Image records in one DynamoDB table."""

    def __init__(self, table: str, client: DynamoDBClient, transactions: bool = True) -> None:
        self.table = table
        self.client = client
        # False on moto (`embedded`): its TransactWriteItems copies every table it touches
        # (CPU that grows with the table) and races concurrent writes (a 500).
        self.transactions = transactions

    def create(self, image: Image, admission: Admission | None = None) -> None:
        """Insert a new record; an existing id is a conflict (never overwritten).

        With an `admission`, its rate-limit hit is counted too: in the same transaction
        when it is a DynamoDB counter (admitted_write.py), else first.
        """
        put: PutTypeDef = {
            "TableName": self.table,
            "Item": to_item(image),
            "ConditionExpression": "attribute_not_exists(image_id)",
        }
        if self.transactions and isinstance(admission, CounterHit):
            together = put_with_hit(self.client, put, admission)
            if together is True:
                return
            if together is False and not self._is_ours(image):
                raise Conflict(f"image {image.image_id!r} already exists")
            if together is False:
                return
        if admission is not None:  # not a DynamoDB counter, or the transaction conflicted
            admission.admit()
        written = conditional_write(BACKEND, partial(self.client.put_item, **put))
        if written is None and not self._is_ours(image):
            raise Conflict(f"image {image.image_id!r} already exists")

    def _is_ours(self, image: Image) -> bool:
        """Whether the record in place is this one: written by an attempt that timed out
        on the way back, whose retry then failed its own condition."""
        existing = self.get(image.image_id)
        return existing is not None and (existing.user_id, existing.created_at) == (
            image.user_id,
            image.created_at,
        )

    def get(self, image_id: str) -> Image | None:
        """The record, or None. Strongly consistent: a just-written record is seen."""
        response = self._call(
            lambda: self.client.get_item(
                TableName=self.table, Key={"image_id": {"S": image_id}}, ConsistentRead=True
            )
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def delete(self, image_id: str, expected: Expected) -> bool:
        """Remove the record if it is in `expected` status; False otherwise."""
        condition, values = _status_condition(expected)
        deleted = conditional_write(
            BACKEND,
            partial(
                self.client.delete_item,
                TableName=self.table,
                Key={"image_id": {"S": image_id}},
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            ),
        )
        return deleted is not None

    def transition(
        self,
        image_id: str,
        expected: Expected,
        changes: dict[str, Any],
        remove: tuple[str, ...] = (),
        claim: str | None = None,
    ) -> Image | None:
        """Set `changes` only if the record is in an `expected` status (and holds `claim`).

        None when the condition fails: a duplicate or late signal changes nothing.
        A change of status drops the sweep-index key unless `changes` sets a new one,
        and leaving `pending` drops any claim.
        """
        changes = dict(changes)
        kind = changes.pop("due_kind", None)
        if "status" in changes:
            if DUE_AT in changes:  # the new status waits for the sweep (or a job) until then
                kind = kind or changes["status"]
            else:
                remove = (*remove, DUE_SHARD, DUE_AT)
            if changes["status"] != Status.PENDING.value:
                remove = (*remove, *_CLAIM_ATTRIBUTES)
            if changes["status"] != Status.READY.value:  # only ready images are duplicates
                remove = (*remove, "owner_sha256")
        if kind is not None:
            changes[DUE_SHARD] = due_shard(kind, image_id)
        condition, values = _status_condition(expected)
        if claim is not None:
            condition += " AND claim_token = :claim"
            values[":claim"] = {"S": claim}
        return self._update(image_id, changes, tuple(dict.fromkeys(remove)), condition, values)

    def claim(self, image_id: str, token: str, now: int, lease_seconds: int) -> Image | None:
        """Take (or renew) the right to verify a pending image; None if another holds it."""
        condition = (
            "#status = :pending AND (attribute_not_exists(claim_until) OR claim_until < :now"
            " OR claim_token = :token)"
        )
        values = {
            ":pending": {"S": Status.PENDING.value},
            ":now": {"N": str(now)},
            ":token": {"S": token},
        }
        changes = {"claim_token": token, "claim_until": now + lease_seconds}
        return self._update(image_id, changes, (), condition, values)

    def release(self, image_id: str, token: str) -> None:
        """Give a claim back early (verification could not run: a store was down)."""
        values = {":expected": {"S": Status.PENDING.value}, ":claim": {"S": token}}
        condition = "#status = :expected AND claim_token = :claim"
        self._update(image_id, {}, _CLAIM_ATTRIBUTES, condition, values)

    def _update(
        self,
        image_id: str,
        changes: dict[str, Any],
        remove: tuple[str, ...],
        condition: str,
        condition_values: dict[str, Any],
    ) -> Image | None:
        names = {f"#f{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": typed_value(value) for i, value in enumerate(changes.values())}
        names |= {f"#r{i}": name for i, name in enumerate(remove)}
        clauses = []
        if changes:
            clauses.append("SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))))
        if remove:
            clauses.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove))))
        response = conditional_write(
            BACKEND,
            partial(
                self.client.update_item,
                TableName=self.table,
                Key={"image_id": {"S": image_id}},
                UpdateExpression=" ".join(clauses),
                ConditionExpression=condition,
                ExpressionAttributeNames=names | {"#status": "status"},
                ExpressionAttributeValues=values | condition_values,
                ReturnValues="ALL_NEW",
            ),
        )
        return from_item(response["Attributes"]) if response else None

    def due(self, kind: str, now: int, limit: int = 100) -> list[Image]:
        """Records of a kind of work (a status, or `variants`) due by `now`, from the index."""
        found: list[Image] = []
        for shard in range(DUE_SHARDS):
            response = self._call(
                partial(
                    self.client.query,
                    TableName=self.table,
                    IndexName=DUE_INDEX,
                    KeyConditionExpression=f"{DUE_SHARD} = :shard AND {DUE_AT} <= :now",
                    ExpressionAttributeValues={
                        ":shard": {"S": shard_key(kind, shard)},
                        ":now": {"N": str(now)},
                    },
                    Limit=limit,
                )
            )
            found.extend(from_item(item) for item in response.get("Items", []))
        return found

    def take_due(self, image_id: str, kind: str, seen: datetime | None, until: datetime) -> bool:
        """Push a due job out to `until` (a lease) only if it is still as `seen`."""
        values: dict[str, Any] = {":shard": {"S": due_shard(kind, image_id)}}
        condition = f"{DUE_SHARD} = :shard"
        if seen is not None:
            condition += f" AND {DUE_AT} = :seen"
            values[":seen"] = typed_value(seen)
        taken = conditional_write(
            BACKEND,
            partial(
                self.client.update_item,
                TableName=self.table,
                Key={"image_id": {"S": image_id}},
                UpdateExpression=f"SET {DUE_AT} = :until",
                ConditionExpression=condition,
                ExpressionAttributeValues=values | {":until": typed_value(until)},
            ),
        )
        return taken is not None

    def statuses(self, image_ids: list[str]) -> dict[str, Status]:
        """Status of each existing record among `image_ids` (at most 100)."""
        image_ids = sorted(set(image_ids))  # BatchGetItem refuses a key twice
        if not image_ids:
            return {}
        request: Any = {
            self.table: {
                "Keys": [{"image_id": {"S": image_id}} for image_id in image_ids],
                "ProjectionExpression": "image_id, #status",
                "ExpressionAttributeNames": {"#status": "status"},
            }
        }
        found: dict[str, Status] = {}
        for _ in range(10):  # unprocessed keys are retried, a bounded number of times
            response = self._call(partial(self.client.batch_get_item, RequestItems=request))
            for item in response.get("Responses", {}).get(self.table, []):
                found[item["image_id"]["S"]] = Status(item["status"]["S"])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise_unavailable(BACKEND, RuntimeError("BatchGetItem left keys unprocessed"))

    def list_page(self, query: ListQuery, limit: int, start: dict[str, str] | None) -> Page:
        """One page, newest first for a user; `start` is the previous page's `next_key`."""
        return list_page(self.client, self.table, query, limit, start, self._call)

    def scan(self) -> Iterator[list[Image]]:
        """Every record, a page at a time (an operator's tool: `fsck`)."""
        paginator = self.client.get_paginator("scan")
        try:
            for page in paginator.paginate(TableName=self.table, ConsistentRead=True):
                yield [from_item(item) for item in page.get("Items", [])]
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)

    def ping(self) -> None:
        """Raise BackendUnavailable unless the table answers."""
        self._call(lambda: self.client.describe_table(TableName=self.table))

    def ensure_table(self) -> list[str]:
        """Create the table, its indexes and TTL if absent; idempotent. Returns warnings."""
        try:
            ensure_images_table(self.client, self.table)
            return enable_ttl(self.client, self.table, TTL_ATTRIBUTE)
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)

    def _call(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except (BotoCoreError, ClientError) as exc:
            if isinstance(exc, ClientError) and error_code(exc) == "ValidationException":
                raise  # a bad ExclusiveStartKey: the caller turns it into a 400
            raise_unavailable(BACKEND, exc)
