"""DynamoDB adapter for image metadata. Every DynamoDB call lives here.

Table layout: partition key `image_id` (S). Global secondary index `by_user`:
partition key `user_id`, sort key `created_at` (fixed-width ISO-8601 text, so it
sorts by time), projection ALL. A user's list is a `Query` on that index, newest
first; only an unfiltered cross-user list is a (paginated) `Scan`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.clients import conditional_write, error_code, raise_unavailable
from cloud_image_service.adapters.items import (
    PENDING_ATTRIBUTE,
    PENDING_SHARDS,
    TTL_ATTRIBUTE,
    from_item,
    shard_key,
    to_item,
    typed_value,
)
from cloud_image_service.adapters.tables import enable_ttl, ensure_images_table
from cloud_image_service.domain.errors import Conflict, InvalidCursor
from cloud_image_service.domain.models import Image, ListQuery, Page, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

BACKEND = "DynamoDB"
USER_INDEX = "by_user"
PENDING_INDEX = "pending_by_expiry"  # sparse: only pending records carry its key
_CLAIM_ATTRIBUTES = ("claim_token", "claim_until")
# A filtered page may need several reads; past this many the page is returned short
# (with a cursor) so that one request never walks a whole partition.
_MAX_READS_PER_PAGE = 5
_MAX_EVALUATED_PER_READ = 1000

Key = dict[str, str]


class ImageCatalog:
    """Image records in one DynamoDB table."""

    def __init__(self, table: str, client: DynamoDBClient) -> None:
        self.table = table
        self.client = client

    def create(self, image: Image) -> None:
        """Insert a new record; an existing id is a conflict (never overwritten)."""
        written = conditional_write(
            BACKEND,
            partial(
                self.client.put_item,
                TableName=self.table,
                Item=to_item(image),
                ConditionExpression="attribute_not_exists(image_id)",
            ),
        )
        if written is None:
            raise Conflict(f"image {image.image_id!r} already exists")

    def get(self, image_id: str) -> Image | None:
        """The record, or None. Strongly consistent: a just-written record is seen."""
        response = self._call(
            lambda: self.client.get_item(
                TableName=self.table, Key={"image_id": {"S": image_id}}, ConsistentRead=True
            )
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def delete(self, image_id: str) -> bool:
        """Remove the record; False when it was already gone."""
        deleted = conditional_write(
            BACKEND,
            partial(
                self.client.delete_item,
                TableName=self.table,
                Key={"image_id": {"S": image_id}},
                ConditionExpression="attribute_exists(image_id)",
            ),
        )
        return deleted is not None

    def transition(
        self,
        image_id: str,
        expected: Status,
        changes: dict[str, Any],
        remove: tuple[str, ...] = (),
        claim: str | None = None,
    ) -> Image | None:
        """Set `changes` only if the record is in `expected` status (and holds `claim`).

        None when the condition fails: a duplicate or late signal changes nothing.
        Leaving `pending` also drops the sparse-index key and any claim.
        """
        if expected is Status.PENDING and changes.get("status") != Status.PENDING.value:
            remove = (*remove, PENDING_ATTRIBUTE, *_CLAIM_ATTRIBUTES)
        condition = "#status = :expected"
        values: dict[str, Any] = {":expected": {"S": expected.value}}
        if claim is not None:
            condition += " AND claim_token = :claim"
            values[":claim"] = {"S": claim}
        return self._update(image_id, changes, remove, condition, values)

    def claim(self, image_id: str, token: str, now: int, lease_seconds: int) -> Image | None:
        """Take the right to verify a pending image for a while; None if another holds it."""
        condition = (
            "#status = :expected AND (attribute_not_exists(claim_until) OR claim_until < :now)"
        )
        values = {":expected": {"S": Status.PENDING.value}, ":now": {"N": str(now)}}
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

    def expired_pending(self, now: int, limit: int = 100) -> list[Image]:
        """Pending records whose TTL has passed, from the sparse index (never a Scan)."""
        found: list[Image] = []
        for shard in range(PENDING_SHARDS):
            response = self._call(
                partial(
                    self.client.query,
                    TableName=self.table,
                    IndexName=PENDING_INDEX,
                    KeyConditionExpression="pending_shard = :shard AND expires_at < :now",
                    ExpressionAttributeValues={
                        ":shard": {"S": shard_key(shard)},
                        ":now": {"N": str(now)},
                    },
                    Limit=limit,
                )
            )
            found.extend(from_item(item) for item in response.get("Items", []))
        return found

    def statuses(self, image_ids: list[str]) -> dict[str, Status]:
        """Status of each existing record among `image_ids` (at most 100)."""
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

    def list_page(self, query: ListQuery, limit: int, start: Key | None) -> Page:
        """One page, newest first for a user; `start` is the previous page's `next_key`."""
        items: list[Image] = []
        key = start
        for read in range(_MAX_READS_PER_PAGE):
            need = limit - len(items)
            # One extra item tells whether another page exists without an empty last page.
            batch = need + 1 if read == 0 else max(need + 1, _MAX_EVALUATED_PER_READ)
            found, key = self._read(query, batch, key)
            items.extend(found)
            if len(items) > limit:
                items = items[:limit]
                return Page(items, self._key_of(items[-1], query))
            if key is None:
                return Page(items, None)
        return Page(items, key)

    def _read(
        self, query: ListQuery, limit: int, start: Key | None
    ) -> tuple[list[Image], Key | None]:
        params: dict[str, Any] = {"TableName": self.table, "Limit": limit}
        filters, names, values = _filter_expression(query)
        if query.user_id is not None:
            params |= {
                "IndexName": USER_INDEX,
                "KeyConditionExpression": "user_id = :uid",
                "ScanIndexForward": False,
            }
            values[":uid"] = {"S": query.user_id}
        if filters:
            params["FilterExpression"] = filters
        if names:
            params["ExpressionAttributeNames"] = names
        if values:
            params["ExpressionAttributeValues"] = values
        if start:
            params["ExclusiveStartKey"] = {name: {"S": value} for name, value in start.items()}
        call = self.client.query if query.user_id is not None else self.client.scan
        try:
            response = self._call(lambda: call(**params))
        except ClientError as exc:  # only a ValidationException gets here
            raise InvalidCursor("cursor does not belong to this listing") from exc
        last = response.get("LastEvaluatedKey")
        next_key = {name: value["S"] for name, value in last.items()} if last else None
        return [from_item(item) for item in response.get("Items", [])], next_key

    @staticmethod
    def _key_of(image: Image, query: ListQuery) -> Key:
        """The ExclusiveStartKey that resumes right after `image`."""
        if query.user_id is None:
            return {"image_id": image.image_id}
        return {
            "image_id": image.image_id,
            "user_id": image.user_id,
            "created_at": to_item(image)["created_at"]["S"],
        }

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


def _filter_expression(query: ListQuery) -> tuple[str, dict[str, str], dict[str, Any]]:
    clauses: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    if query.tag is not None:
        clauses.append("contains(tags, :tag)")
        values[":tag"] = {"S": query.tag}
    if set(query.statuses) != set(Status):
        names["#status"] = "status"
        marks = [f":s{i}" for i in range(len(query.statuses))]
        clauses.append(f"#status IN ({', '.join(marks)})")
        values |= {mark: {"S": s.value} for mark, s in zip(marks, query.statuses, strict=True)}
    return " AND ".join(clauses), names, values
