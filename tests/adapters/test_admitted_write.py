"""An upload's record and its rate-limit hit in one DynamoDB transaction (admitted_write.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from cloud_image_service.adapters.images_table import ImageCatalog
from cloud_image_service.adapters.keys_table import KEY_ATTRIBUTE, ApiKeyStore
from cloud_image_service.adapters.rate_counter import DynamoRateLimiter
from cloud_image_service.auth.errors import TooManyRequests
from cloud_image_service.auth.ratelimit import RateLimit
from cloud_image_service.domain.errors import Conflict
from cloud_image_service.domain.models import Image, utcnow
from tests.adapters.test_keys_table import dynamodb_client
from tests.conftest import RealStores
from tests.limiting import Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WINDOW = 5_000_040.0  # a window start: 60 * 83_334


@pytest.fixture(params=["moto", pytest.param("dynamodb-local", marks=pytest.mark.real)])
def client(request: pytest.FixtureRequest) -> Iterator[DynamoDBClient]:
    """moto's server, and DynamoDB Local (or LocalStack): both run transactions."""
    if request.param == "moto":
        yield dynamodb_client(request.getfixturevalue("moto_endpoint"))
    else:
        stores: RealStores = request.getfixturevalue("real_stores")
        yield dynamodb_client(stores.dynamodb_url)


@pytest.fixture
def parts(client: DynamoDBClient) -> tuple[ImageCatalog, DynamoRateLimiter]:
    suffix = uuid.uuid4().hex[:8]
    catalog = ImageCatalog(f"images-{suffix}", client)
    catalog.ensure_table()
    keys = ApiKeyStore(f"keys-{suffix}", client)
    keys.ensure_table()
    return catalog, DynamoRateLimiter(keys.table, client, RateLimit(2, 60), Clock(WINDOW))


def _image(user: str = "alice") -> Image:
    return Image(str(uuid.uuid4()), user, "image/png", utcnow())


def _hits(limiter: DynamoRateLimiter, caller: str) -> int:
    key = {KEY_ATTRIBUTE: {"S": f"rate#uploads#{caller}#{int(WINDOW)}"}}
    item = limiter.client.get_item(TableName=limiter.table, Key=key, ConsistentRead=True)
    return int(item.get("Item", {}).get("hits", {}).get("N", "0"))


def test_records_are_written_with_their_hit_until_the_limit(
    parts: tuple[ImageCatalog, DynamoRateLimiter],
) -> None:
    catalog, limiter = parts
    written = [_image(), _image()]
    for image in written:
        catalog.create(image, limiter.admission("user:alice"))
    refused = _image()
    with pytest.raises(TooManyRequests) as caught:
        catalog.create(refused, limiter.admission("user:alice"))
    assert caught.value.retry_after == 60
    assert [catalog.get(image.image_id) is not None for image in written] == [True, True]
    assert catalog.get(refused.image_id) is None  # refused: no record
    assert _hits(limiter, "user:alice") == 2  # and the refusal did not count


def test_a_record_that_exists_counts_no_hit(
    parts: tuple[ImageCatalog, DynamoRateLimiter],
) -> None:
    catalog, limiter = parts
    image = _image()
    catalog.create(image, limiter.admission("user:bob"))
    other = Image(image.image_id, "mallory", "image/png", utcnow())
    with pytest.raises(Conflict):
        catalog.create(other, limiter.admission("user:bob"))
    assert _hits(limiter, "user:bob") == 1
    catalog.create(image, limiter.admission("user:bob"))  # our own write, retried: no error
    assert _hits(limiter, "user:bob") == 1


# Not on moto: its transact_write_items copies the tables it touches and races concurrent
# writers (a 500), which is why the embedded backend never uses transactions (runtime.py).
@pytest.mark.parametrize(
    "client", [pytest.param("dynamodb-local", marks=pytest.mark.real)], indirect=True
)
def test_concurrent_uploads_of_one_user_never_pass_the_limit(
    parts: tuple[ImageCatalog, DynamoRateLimiter],
) -> None:
    """Transactions on one counter conflict: the fallback still counts every admitted one."""
    catalog, _ = parts
    limiter = DynamoRateLimiter(_.table, _.client, RateLimit(10, 60), Clock(WINDOW), name="uploads")

    def attempt(_: int) -> bool:
        try:
            catalog.create(_image("carol"), limiter.admission("user:carol"))
        except TooManyRequests:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        admitted = sum(pool.map(attempt, range(30)))
    assert admitted == 10
    assert _hits(limiter, "user:carol") == 10
