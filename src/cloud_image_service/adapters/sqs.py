"""SQS adapter: the queue that S3 `ObjectCreated` events arrive on. Every SQS call lives here."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.clients import (
    MAX_LONG_POLL_SECONDS,
    error_code,
    raise_unavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

BACKEND = "SQS"


@dataclass(frozen=True)
class Message:
    """One queue message and the object keys its S3 event names."""

    receipt: str
    keys: list[str]
    sent_at: float | None = None  # epoch seconds SQS received it: the worker's lag


def object_keys(body: str) -> list[str]:
    """Keys of the ObjectCreated records in an S3 event (a test event has none)."""
    try:
        event = json.loads(body)
    except ValueError:
        return []
    records = event.get("Records", []) if isinstance(event, dict) else []
    # S3 URL-encodes keys in events ('+' for a space).
    return [
        unquote_plus(record["s3"]["object"]["key"])
        for record in records
        if str(record.get("eventName", "")).startswith("ObjectCreated")
    ]


class UploadQueue:
    """Receives and acknowledges upload events."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    @classmethod
    def named(cls, client: SQSClient, name: str) -> UploadQueue:
        """The existing queue called `name` (created by `init`)."""
        try:
            url = client.get_queue_url(QueueName=name)["QueueUrl"]
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        return cls(client, url)

    def receive(self, wait_seconds: int, max_messages: int = 10) -> list[Message]:
        """Long-poll for messages; they stay invisible to others while being handled."""
        wait_seconds = min(wait_seconds, MAX_LONG_POLL_SECONDS)  # the client's read timeout
        try:
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["SentTimestamp"],
            )
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        messages = response.get("Messages", [])
        return [
            Message(m["ReceiptHandle"], object_keys(m.get("Body", "")), _sent_at(m))
            for m in messages
        ]

    def ack(self, message: Message) -> None:
        """Delete a handled message (an unacknowledged one comes back later)."""
        try:
            self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt)
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)


def ensure_queue(client: SQSClient, name: str, bucket: str) -> tuple[str, str]:
    """Create the queue (idempotent) with a policy letting the bucket send; (url, arn)."""
    try:
        url = client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})[
            "QueueUrl"
        ]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        client.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _policy(arn, bucket)})
    except (BotoCoreError, ClientError) as exc:
        log.warning("queue %s: %s", name, error_code(exc) if isinstance(exc, ClientError) else exc)
        raise_unavailable(BACKEND, exc)
    return url, arn


def _policy(queue_arn: str, bucket: str) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _sent_at(message: Any) -> float | None:
    sent = message.get("Attributes", {}).get("SentTimestamp")
    return int(sent) / 1000 if sent else None
