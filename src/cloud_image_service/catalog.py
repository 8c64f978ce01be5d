"""DynamoDB adapter for image metadata. Every DynamoDB call lives here.

Table layout: partition key `image_id` (S). Global secondary index `by_user`:
partition key `user_id`, sort key `created_at` (fixed-width ISO-8601 text, so it
sorts by time), projection ALL. A user's list is a `Query` on that index, newest
first; only an unfiltered cross-user list is a (paginated) `Scan`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.aws import error_code, raise_unavailable
from cloud_image_service.errors import Conflict, InvalidCursor
from cloud_image_service.items import from_item, to_item, typed_value
from cloud_image_service.models import Image, ListQuery, Page, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

BACKEND = "DynamoDB"
USER_INDEX = "by_user"
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
        try:
            self.client.put_item(
                TableName=self.table,
                Item=to_item(image),
                ConditionExpression="attribute_not_exists(image_id)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(f"image {image.image_id!r} already exists") from exc
            raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)

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
        try:
            self.client.delete_item(
                TableName=self.table,
                Key={"image_id": {"S": image_id}},
                ConditionExpression="attribute_exists(image_id)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)
        return True

    def transition(
        self, image_id: str, expected: Status, changes: dict[str, Any], remove: tuple[str, ...] = ()
    ) -> Image | None:
        """Set `changes` only if the record is in `expected` status; None when it is not."""
        names = {f"#f{i}": name for i, name in enumerate(changes)}
        values = {
            f":v{i}": value
            for i, value in enumerate(typed_value(value) for value in changes.values())
        }
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(changes)))
        removes = ", ".join(f"#r{i}" for i in range(len(remove)))
        names |= {f"#r{i}": name for i, name in enumerate(remove)}
        expression = f"SET {sets}" + (f" REMOVE {removes}" if remove else "")
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key={"image_id": {"S": image_id}},
                UpdateExpression=expression,
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames=names | {"#status": "status"},
                ExpressionAttributeValues=values | {":expected": {"S": expected.value}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)
        return from_item(response["Attributes"])

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

    def ensure_table(self) -> bool:
        """Create the table and its index if absent (on-demand billing); idempotent."""
        try:
            self.client.describe_table(TableName=self.table)
            return False
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)
        self._call(self._create_table)
        self.client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        log.info("table %s created", self.table)
        return True

    def _create_table(self) -> None:
        self.client.create_table(
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "image_id", "AttributeType": "S"},
                {"AttributeName": "user_id", "AttributeType": "S"},
                {"AttributeName": "created_at", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": USER_INDEX,
                    "KeySchema": [
                        {"AttributeName": "user_id", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )

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
