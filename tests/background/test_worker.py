"""The worker's long poll outlives nothing: an empty queue is quiet, not an error."""

from __future__ import annotations

import logging
import time

import boto3
import pytest

from cloud_image_service.adapters.clients import make_sqs_client
from cloud_image_service.adapters.sqs import Message, UploadQueue
from cloud_image_service.background.sweeper import Sweeper
from cloud_image_service.background.worker import Worker
from cloud_image_service.domain.pagination import CursorCodec
from cloud_image_service.domain.service import ImageService
from tests.fakes import FakeCatalog, FakeStorage


def test_a_queue_empty_for_30_seconds_logs_no_error(
    moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    # The store timeout is shorter than the 10 s wait: the client's read timeout must not be.
    sqs = make_sqs_client(session, moto_endpoint, timeout=2.0)
    url = sqs.create_queue(QueueName="empty-for-a-while")["QueueUrl"]
    service = ImageService(FakeStorage(), FakeCatalog(), CursorCodec(b"k"))
    worker = Worker(service, Sweeper(service, 0), UploadQueue(sqs, url), 3600, wait_seconds=10)
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    polls = 0
    while time.monotonic() - started < 30:
        assert worker.poll_once() == 0
        polls += 1
    assert polls <= 4  # each poll really waited (moto honours WaitTimeSeconds)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]


def test_stop_finishes_the_current_event_and_loses_none(moto_endpoint: str) -> None:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    sqs = make_sqs_client(session, moto_endpoint, timeout=2.0)
    url = sqs.create_queue(QueueName="stopping")["QueueUrl"]
    handled: list[str] = []
    service = ImageService(FakeStorage(), FakeCatalog(), CursorCodec(b"k"))
    worker = Worker(service, Sweeper(service, 0), UploadQueue(sqs, url), 3600, wait_seconds=1)

    def slow(message: Message) -> None:
        time.sleep(1.0)  # the worker is mid-event when it is told to stop
        handled.append(message.receipt)

    worker.handle = slow  # type: ignore[method-assign]
    for index in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f'{{"Records": [], "n": {index}}}')
    worker.start()
    time.sleep(1.5)
    started = time.monotonic()
    worker.stop()
    worker.join(timeout=10)
    assert time.monotonic() - started < 5  # the current event is finished, not abandoned
    left = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    remaining = int(left["ApproximateNumberOfMessages"]) + int(
        left["ApproximateNumberOfMessagesNotVisible"]
    )
    assert len(handled) + remaining == 3  # each handled (and deleted) or still queued
