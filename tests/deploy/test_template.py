"""deploy/template.yaml keeps the promises the code relies on.

The tables, the bucket's settings and the queue policy are compared with what the code's own
`init` would create (its calls recorded on a stand-in client), so the template cannot drift
from the code. The linters (cfn-lint, checkov) run in deploy/check.sh, not here.
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from collections.abc import Callable
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from cloud_image_service.adapters.bucket_setup import BucketSetup
from cloud_image_service.adapters.images_table import ImageCatalog
from cloud_image_service.adapters.keys_table import ApiKeyStore
from cloud_image_service.adapters.sqs import ensure_queue
from cloud_image_service.config import Settings
from cloud_image_service.domain.models import UPLOAD_PREFIX
from tests.deploy.cfn import ROOT, get_att, ref, resources, template

FUNCTIONS = {
    "ApiFunction": "cloud_image_service.lambdas.api_handler",
    "WorkerFunction": "cloud_image_service.lambdas.worker_handler",
    "SweepFunction": "cloud_image_service.lambdas.sweep_handler",
}


class Recorder:
    """A boto3 client stand-in: records each call's arguments, answers from `answers`."""

    def __init__(self, **answers: Callable[..., Any]) -> None:
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.answers = answers

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.setdefault(name, []).append(kwargs)
            answer = self.answers.get(name)
            return answer(*args, **kwargs) if answer else {}

        return call


class _Waiter:
    def wait(self, **kwargs: Any) -> None:
        pass


def _missing_table(**kwargs: Any) -> Any:
    raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DescribeTable")


def _dynamodb() -> Recorder:
    return Recorder(
        describe_table=_missing_table,
        get_waiter=lambda *args, **kwargs: _Waiter(),
        describe_time_to_live=lambda **kwargs: {"TimeToLiveDescription": {}},
    )


def _what_init_creates(run: Callable[[Any], object]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(create_table arguments, TTL specification) that `init` sends for one table."""
    client = _dynamodb()
    run(client)
    (created,) = client.calls["create_table"]
    (ttl,) = client.calls["update_time_to_live"]
    return created, ttl["TimeToLiveSpecification"]


def _by_name(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: str(item[key]))


@pytest.mark.parametrize(
    ("logical_id", "run"),
    [
        ("ImagesTable", lambda client: ImageCatalog("t", client).ensure_table()),
        ("KeysTable", lambda client: ApiKeyStore("t", client).ensure_table()),
    ],
)
def test_tables_are_what_init_creates(logical_id: str, run: Callable[[Any], object]) -> None:
    created, ttl = _what_init_creates(run)
    table = template()["Resources"][logical_id]["Properties"]
    assert table["KeySchema"] == created["KeySchema"]
    assert _by_name(table["AttributeDefinitions"], "AttributeName") == _by_name(
        created["AttributeDefinitions"], "AttributeName"
    )
    assert _by_name(table["GlobalSecondaryIndexes"], "IndexName") == _by_name(
        created["GlobalSecondaryIndexes"], "IndexName"
    )
    assert table["TimeToLiveSpecification"] == ttl
    assert table["BillingMode"] == created["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_images_table_indexes_are_the_three_the_code_queries() -> None:
    table = template()["Resources"]["ImagesTable"]["Properties"]
    keys = {
        index["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]]
        for index in table["GlobalSecondaryIndexes"]
    }
    assert keys == {
        "by_user": [("user_id", "HASH"), ("created_at", "RANGE")],
        "due_by_time": [("due_shard", "HASH"), ("due_at", "RANGE")],
        "by_sha256": [("owner_sha256", "HASH"), ("created_at", "RANGE")],
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types["due_at"] == "N"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_bucket_is_configured_as_init_configures_it() -> None:
    client = Recorder()  # head_bucket answers: the bucket exists, only its settings are sent
    setup = BucketSetup("images", cast(Any, client))
    setup.ensure_bucket("us-east-1", ["https://app.example.com"])
    setup.notify_queue("arn:queue", UPLOAD_PREFIX)
    bucket = template()["Resources"]["ImagesBucket"]["Properties"]

    (block,) = client.calls["put_public_access_block"]
    assert bucket["PublicAccessBlockConfiguration"] == block["PublicAccessBlockConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")

    (lifecycle,) = client.calls["put_bucket_lifecycle_configuration"]
    (code_rule,) = lifecycle["LifecycleConfiguration"]["Rules"]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Id"] == code_rule["ID"]
    assert rule["Status"] == code_rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == code_rule["AbortIncompleteMultipartUpload"]
    assert code_rule["Filter"] == {"Prefix": ""}
    # The whole bucket, as the code's rule.
    assert "Prefix" not in rule
    assert "TagFilters" not in rule

    (cors,) = client.calls["put_bucket_cors"]
    (code_cors,) = cors["CORSConfiguration"]["CORSRules"]
    condition, with_cors, without = bucket["CorsConfiguration"]["Fn::If"]
    assert (condition, without) == ("HasCors", ref("AWS::NoValue"))
    (cors_rule,) = with_cors["CorsRules"]
    assert cors_rule["AllowedOrigins"] == {"Fn::Split": [",", ref("CorsOrigins")]}
    assert cors_rule["AllowedMethods"] == code_cors["AllowedMethods"]
    assert cors_rule["AllowedHeaders"] == code_cors["AllowedHeaders"]
    assert cors_rule["ExposedHeaders"] == code_cors["ExposeHeaders"] == ["ETag"]
    assert cors_rule["MaxAge"] == code_cors["MaxAgeSeconds"]

    (notification,) = client.calls["put_bucket_notification_configuration"]
    (code_queue,) = notification["NotificationConfiguration"]["QueueConfigurations"]
    (queue,) = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert [queue["Event"]] == code_queue["Events"] == ["s3:ObjectCreated:*"]
    assert queue["Queue"] == get_att("UploadQueue", "Arn")
    assert queue["Filter"]["S3Key"]["Rules"] == code_queue["Filter"]["Key"]["FilterRules"]
    assert queue["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]


def test_queue_policy_lets_only_this_bucket_send() -> None:
    sqs = Recorder(
        create_queue=lambda **kwargs: {"QueueUrl": "url"},
        get_queue_attributes=lambda **kwargs: {"Attributes": {"QueueArn": "arn"}},
    )
    ensure_queue(cast(Any, sqs), "q", "images")
    (code_statement,) = json.loads(sqs.calls["set_queue_attributes"][0]["Attributes"]["Policy"])[
        "Statement"
    ]
    resources_ = template()["Resources"]
    (statement,) = resources_["UploadQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    for key in ("Effect", "Principal", "Action"):
        assert statement[key] == code_statement[key]
    assert statement["Resource"] == get_att("UploadQueue", "Arn")
    source = statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert source[0] == "arn:${AWS::Partition}:s3:::${Name}"
    # The policy names the bucket without !Ref (no circular dependency): the same name.
    assert source[1]["Name"] == resources_["ImagesBucket"]["Properties"]["BucketName"]
    assert resources_["ImagesBucket"]["DependsOn"] == "UploadQueuePolicy"


def test_the_three_functions_and_their_handlers() -> None:
    functions = resources("AWS::Serverless::Function")
    assert {name: f["Properties"]["Handler"] for name, f in functions.items()} == FUNCTIONS
    for handler in FUNCTIONS.values():
        module, name = handler.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name))
    glob = template()["Globals"]["Function"]
    assert (ROOT / "deploy" / glob["CodeUri"] / "cloud_image_service" / "lambdas.py").is_file()
    # python3.11 on Lambda is Amazon Linux 2 (glibc 2.26): the Pillow, pillow-heif and
    # pyvips-binary wheels of the lock need 2.27+; python3.12+ runs on Amazon Linux 2023.
    assert int(glob["Runtime"].removeprefix("python3.")) >= 12
    for name, function in functions.items():
        assert function["Properties"]["Role"] == get_att(name.replace("Function", "Role"), "Arn")


def test_api_behind_the_http_api_default_route() -> None:
    api = template()["Resources"]["ApiFunction"]["Properties"]
    (event,) = api["Events"].values()
    assert event["Type"] == "HttpApi"
    assert event["Properties"] == {"ApiId": ref("HttpApi"), "PayloadFormatVersion": "2.0"}
    assert api["Timeout"] < 30  # HTTP API's integration limit
    url = template()["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${HttpApi}.execute-api.")


def test_worker_reports_partial_batch_failures_and_has_a_dead_letter_queue() -> None:
    resources_ = template()["Resources"]
    worker = resources_["WorkerFunction"]["Properties"]
    (event,) = worker["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == get_att("UploadQueue", "Arn")
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources_["UploadQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == get_att("UploadDeadLetterQueue", "Arn")
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 1
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]  # Lambda's advice for SQS


def test_sweep_runs_on_a_schedule() -> None:
    sweep = template()["Resources"]["SweepFunction"]["Properties"]
    (event,) = sweep["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == ref("SweepSchedule")
    default = template()["Parameters"]["SweepSchedule"]["Default"]
    assert re.fullmatch(r"rate\(\d+ (minute|minutes|hour|hours|day|days)\)", default)


def _environment(function: str) -> dict[str, Any]:
    """The function's variables: the Globals' with its own on top (as SAM merges them)."""
    variables: dict[str, Any] = dict(template()["Globals"]["Function"]["Environment"]["Variables"])
    own = template()["Resources"][function]["Properties"].get("Environment", {})
    variables.update(own.get("Variables", {}))
    return variables


def test_settings_are_what_the_service_reads() -> None:
    known = {f"CIS_{name.upper()}" for name in Settings.model_fields}
    for function in FUNCTIONS:
        names = set(_environment(function)) - {"CIS_DEPLOY_SECRETS_REVISION"}
        assert names <= known, names - known
    env = _environment("ApiFunction")
    assert env["CIS_BACKEND"] == "aws"
    assert env["CIS_EVENTS"] == "sqs"
    assert env["CIS_WORKER_IN_PROCESS"] == "false"
    assert env["CIS_LOG_FORMAT"] == "json"
    assert env["CIS_BUCKET"] == ref("ImagesBucket")
    assert env["CIS_TABLE"] == ref("ImagesTable")
    assert env["CIS_KEYS_TABLE"] == ref("KeysTable")
    assert env["CIS_QUEUE_NAME"] == get_att("UploadQueue", "QueueName")
    assert env["CIS_CURSOR_SECRET"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${CursorSecret}:SecretString}}"
    }
    assert _environment("SweepFunction")["CIS_EVENTS"] == "off"  # no SQS in its role


def test_the_deployed_settings_start_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The template's variables (jwt with the generated secret) make a valid aws Settings."""
    sample = {"Ref": "x", "Fn::GetAtt": "x", "Fn::Sub": "s" * 64}
    for name, value in _environment("ApiFunction").items():
        if isinstance(value, dict) and "Fn::If" in value:
            value = value["Fn::If"][1]  # the condition holds (no JWKS: the HS256 secret)
        if isinstance(value, dict):
            (kind,) = value
            value = "jwt" if value == ref("AuthMode") else sample[kind]
        if value == ref("AWS::NoValue"):
            continue
        monkeypatch.setenv(name, str(value))
    for name in ("CIS_JWT_JWKS", "CIS_JWT_ISSUER", "CIS_JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CIS_CORS_ORIGINS", "")
    monkeypatch.setenv("CIS_RATE_LIMIT", "")
    monkeypatch.setenv("CIS_VARIANTS", "thumb:256,preview:1280")
    monkeypatch.setenv("CIS_TRASH_DAYS", "0")
    settings = Settings(_env_file=None)
    assert settings.backend == "aws"
    assert settings.auth_mode == "jwt"
    assert settings.events_enabled
    assert not settings.run_worker_in_process
    assert settings.log_style == "json"


def test_roles_grant_named_actions_on_named_resources() -> None:
    for name, role in resources("AWS::IAM::Role").items():
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                resources_ = statement["Resource"]
                for action in actions if isinstance(actions, list) else [actions]:
                    assert "*" not in action, (name, action)
                for resource in resources_ if isinstance(resources_, list) else [resources_]:
                    assert resource != "*", name


def _actions(role: str) -> set[str]:
    policies = template()["Resources"][role]["Properties"]["Policies"]
    found: set[str] = set()
    for policy in policies:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            found.update(actions if isinstance(actions, list) else [actions])
    return found


def test_each_role_has_what_its_function_calls() -> None:
    api, worker, sweep = _actions("ApiRole"), _actions("WorkerRole"), _actions("SweepRole")
    assert not {a for a in api | sweep if a.startswith("sqs:")}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= worker
    assert {"s3:ListMultipartUploadParts", "dynamodb:PutItem", "dynamodb:Scan"} <= api
    assert {"s3:ListBucketMultipartUploads", "dynamodb:BatchGetItem"} <= sweep
    assert "s3:ListBucket" in api & worker & sweep  # a HEAD of a missing object: 404, not 403


def test_bucket_and_tables_outlive_the_stack() -> None:
    for name in ("ImagesBucket", "ImagesTable", "KeysTable"):
        resource = template()["Resources"][name]
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def _alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    properties = alarm["Properties"]
    if "Metrics" in properties:
        return [m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m]
    return [properties]


def test_alarms_on_5xx_rate_worker_errors_and_queue_age() -> None:
    watched = {
        (metric["Namespace"], metric["MetricName"], json.dumps(metric["Dimensions"]))
        for alarm in resources("AWS::CloudWatch::Alarm").values()
        for metric in _alarm_metrics(alarm)
    }

    def dims(name: str, value: object) -> str:
        return json.dumps([{"Name": name, "Value": value}])

    assert ("AWS/ApiGateway", "5xx", dims("ApiId", ref("HttpApi"))) in watched
    assert ("AWS/ApiGateway", "Count", dims("ApiId", ref("HttpApi"))) in watched
    assert ("AWS/Lambda", "Errors", dims("FunctionName", ref("WorkerFunction"))) in watched
    queue = dims("QueueName", get_att("UploadQueue", "QueueName"))
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue) in watched
    for alarm in resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [ref("AlarmTopic")]


def _name(requirement: str) -> str:
    name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lambda_requirements_cover_the_package_dependencies() -> None:
    """deploy/requirements.txt (what `sam build` installs) is regenerated with the package."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "deploy" / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[^=\s]+", pin) for pin in pins), pins
    pinned = {_name(pin) for pin in pins}
    missing = {_name(dep) for dep in project["dependencies"]} - pinned
    assert not missing, f"run deploy/requirements.sh: {sorted(missing)} not in requirements.txt"
    samconfig = tomllib.loads((ROOT / "deploy" / "samconfig.toml").read_text())
    assert samconfig["default"]["build"]["parameters"]["manifest"] == "requirements.txt"
