"""The read side of the images table: one page of a listing, as DynamoDB Query or Scan.

A user's list is a `Query` on the `by_user` index, newest first; `created_after` and
`created_before` narrow the index's sort key, so a time window costs what its page
costs, never a walk over the user's whole partition. `tag` and status are filters on
top: a page keeps reading (bounded) until it is full, and resumes right after the last
item it returned, so there is no empty last page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cloud_image_service.adapters.items import from_item, to_item
from cloud_image_service.domain.errors import InvalidCursor
from cloud_image_service.domain.models import Image, ListQuery, Page, format_timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

USER_INDEX = "by_user"
SHA256_INDEX = "by_sha256"
# A filtered page may need several reads; past this many the page is returned short
# (with a cursor) so that one request never walks a whole partition.
_MAX_READS_PER_PAGE = 5
_MAX_EVALUATED_PER_READ = 1000
_TICK = timedelta(microseconds=1)  # the resolution of `created_at`

Key = dict[str, str]
Call = Callable[[Callable[[], Any]], Any]


def list_page(
    client: DynamoDBClient, table: str, query: ListQuery, limit: int, start: Key | None, call: Call
) -> Page:
    """One page of `query`; `start` is the previous page's `next_key`."""
    items: list[Image] = []
    key = start
    for read in range(_MAX_READS_PER_PAGE):
        need = limit - len(items)
        # One extra item tells whether another page exists without an empty last page.
        batch = need + 1 if read == 0 else max(need + 1, _MAX_EVALUATED_PER_READ)
        found, key = _read(client, table, query, batch, key, call)
        items.extend(found)
        if len(items) > limit:
            items = items[:limit]
            return Page(items, _key_of(items[-1], query))
        if key is None:
            return Page(items, None)
    return Page(items, key)


def _time_window(query: ListQuery) -> tuple[str | None, str | None]:
    """Inclusive bounds of `created_at` text for exclusive `created_after`/`before`."""
    low = format_timestamp(query.created_after + _TICK) if query.created_after else None
    high = format_timestamp(query.created_before - _TICK) if query.created_before else None
    return low, high


def _key_condition(query: ListQuery, values: dict[str, Any]) -> str:
    values[":uid"] = {"S": query.user_id}
    low, high = _time_window(query)
    if low is not None:
        values[":low"] = {"S": low}
    if high is not None:
        values[":high"] = {"S": high}
    if low is not None and high is not None:
        return "user_id = :uid AND created_at BETWEEN :low AND :high"
    if low is not None:
        return "user_id = :uid AND created_at >= :low"
    if high is not None:
        return "user_id = :uid AND created_at <= :high"
    return "user_id = :uid"


def _read(
    client: DynamoDBClient, table: str, query: ListQuery, limit: int, start: Key | None, call: Call
) -> tuple[list[Image], Key | None]:
    params: dict[str, Any] = {"TableName": table, "Limit": limit}
    filters, names, values = _filter_expression(query)
    if query.sha256 is not None and query.user_id is not None:
        values[":owner_sha"] = {"S": f"{query.user_id}#{query.sha256}"}
        params |= {
            "IndexName": SHA256_INDEX,
            "KeyConditionExpression": "owner_sha256 = :owner_sha",
            "ScanIndexForward": False,
        }
    elif query.user_id is not None:
        params |= {
            "IndexName": USER_INDEX,
            "KeyConditionExpression": _key_condition(query, values),
            "ScanIndexForward": False,
        }
    if filters:
        params["FilterExpression"] = filters
    if names:
        params["ExpressionAttributeNames"] = names
    if values:
        params["ExpressionAttributeValues"] = values
    if start:
        params["ExclusiveStartKey"] = {name: {"S": value} for name, value in start.items()}
    operation = client.query if query.user_id is not None else client.scan
    try:
        response = call(lambda: operation(**params))
    except ClientError as exc:  # only a ValidationException gets here
        raise InvalidCursor("cursor does not belong to this listing") from exc
    last = response.get("LastEvaluatedKey")
    next_key = {name: value["S"] for name, value in last.items()} if last else None
    return [from_item(item) for item in response.get("Items", [])], next_key


def _key_of(image: Image, query: ListQuery) -> Key:
    """The ExclusiveStartKey that resumes right after `image`."""
    if query.user_id is None:
        return {"image_id": image.image_id}
    if query.sha256 is not None:
        return {
            "image_id": image.image_id,
            "owner_sha256": f"{image.user_id}#{image.sha256}",
            "created_at": to_item(image)["created_at"]["S"],
        }
    return {
        "image_id": image.image_id,
        "user_id": image.user_id,
        "created_at": to_item(image)["created_at"]["S"],
    }


def _filter_expression(query: ListQuery) -> tuple[str, dict[str, str], dict[str, Any]]:
    clauses: list[str] = []
    names: dict[str, str] = {"#status": "status"}
    values: dict[str, Any] = {}
    if query.tag is not None:
        clauses.append("contains(tags, :tag)")
        values[":tag"] = {"S": query.tag}
    marks = [f":s{i}" for i in range(len(query.statuses))]
    clauses.append(f"#status IN ({', '.join(marks)})")
    values |= {mark: {"S": s.value} for mark, s in zip(marks, query.statuses, strict=True)}
    if query.user_id is None:  # a Scan: the time window can only be a filter
        low, high = _time_window(query)
        if low is not None:
            clauses.append("created_at >= :low")
            values[":low"] = {"S": low}
        if high is not None:
            clauses.append("created_at <= :high")
            values[":high"] = {"S": high}
    return " AND ".join(clauses), names, values
