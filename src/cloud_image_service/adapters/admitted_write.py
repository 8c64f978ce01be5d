"""A conditional put and its rate-limit hit in one DynamoDB call.

`POST /images/upload` used to make two calls: the counter's conditional `ADD`, then the
record's conditional put. botocore costs more CPU per call than the rest of the request,
so both go in one `TransactWriteItems`: all or nothing, each still conditional. A refused
hit writes no record; a record that cannot be written counts no hit. The price is in
DynamoDB's units: a transaction's writes cost two write units each instead of one (about
$2.50 more per million uploads on demand), far less than the CPU it saves.

A transaction that conflicts with another on the same counter (one user's concurrent
uploads) is cancelled with `TransactionConflict`: the write then falls back to the two
calls, which never conflict. botocore's idempotency token makes a retried transaction
(an answer lost on the way back) a no-op, not a second hit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.clients import error_code, raise_unavailable
from cloud_image_service.adapters.rate_counter import CounterHit

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef

BACKEND = "DynamoDB"
_FAILED = "ConditionalCheckFailed"


def put_with_hit(client: DynamoDBClient, put: PutTypeDef, hit: CounterHit) -> bool | None:
    """True: written and counted; False: the put's condition failed (nothing counted);
    None: the transaction conflicted, nothing was written: count and put separately.

    TooManyRequests when the hit is refused (nothing written); a 503 when the store fails.
    """
    update, left = hit.limiter.update(hit.caller)
    try:
        client.transact_write_items(TransactItems=[{"Put": put}, {"Update": update}])
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise_unavailable(BACKEND, exc)
        reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
        if len(reasons) == 2 and reasons[1] == _FAILED:
            raise hit.limiter.refusal(left) from None
        if reasons and reasons[0] == _FAILED:
            return False
        if "TransactionConflict" in reasons:
            return None
        raise_unavailable(BACKEND, exc)
    except BotoCoreError as exc:
        raise_unavailable(BACKEND, exc)
    return True
