"""Everything CloudFormation and Chalice are given about a stage, written from
this one file (the table from `chalicelib.storage.table.table_definition`), so
none of it can drift from the code (tests/test_deploy.py fails if a committed
file differs from what this script writes):

- infra/stack-<stage>.json: the stage's own stack for `make deploy` (infra/deploy.py),
  what `chalice deploy` cannot create: the table, the event bus, the stream
  failure queue, the functions' log groups; its outputs are the functions'
  environment (`stack_environment`), which make deploy copies into
  .chalice/config.json;
- .chalice/policy-<stage>.json: the IAM policy Chalice attaches to every
  function's role (autogen_policy is off);
- infra/resources-<stage>.json: for the CloudFormation-only path (`make
  package`), what `chalice package --merge-template` adds to Chalice's template:
  the same resources, and what make deploy sets after `chalice deploy`.

    python infra/build_template.py           # write them all
    python infra/build_template.py --check   # exit 1 if a committed file is stale

Adding a resource to every stage (an S3 bucket for attachments, say) is: its
CloudFormation in `stage_resources`, the variable that names it in
`stack_environment` (both paths then hand it to the functions), and its
statement in `policy`.

What the merge adds to each stage's stack for `make package` (README, "Deploy to AWS"):

- the table (keys, indexes, stream NEW_AND_OLD_IMAGES, on-demand, point-in-time
  recovery, TTL on `expires_at`; deletion protection and Retain in prod);
- the stream handler's event source settings: Chalice writes the event source
  with the stream ARN that app.py read from CHAT_STREAM_ARN when `chalice
  package` imported it (a local placeholder unless set). The merge replaces
  that `Stream` with `Fn::GetAtt [ChatTable, StreamArn]`, the table of the same
  stack, so the value at package time does not matter; and it adds
  ReportBatchItemFailures, bisection, bounded retries and record age, and an
  SQS queue for the records that still fail;
- the functions' names (so the policy can name their log groups), environment
  (CHAT_TABLE_NAME from the table itself, CHAT_JWT_SECRET_PARAMETER: the name of
  an SSM SecureString that you create, never its value; CHAT_WEBSOCKET_ENDPOINT,
  the management endpoint of Chalice's websocket API in this stack;
  CHAT_EVENT_BUS, an EventBridge bus of this stack), log groups with a retention,
  and Lambda's log level (LoggingConfig, JSON lines);
- what a static policy file cannot name: the websocket API's id, known only
  once the stack makes it. A policy of this template, attached to the roles
  Chalice generates for the two functions that push (post_to_connection),
  grants execute-api:ManageConnections on that API's stage only.

The functions' environment: on the make deploy path it lives in
.chalice/config.json, because Chalice sends a function's whole environment on
every deploy; make deploy writes the stack's outputs there. (Chalice's test
client would copy a stage's variables into os.environ around each request, and
leave them there under concurrent requests: tests/conftest.py turns that off.)
On the make package path the merge sets it, from the stack's own resources.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make chalicelib importable
    sys.path.insert(0, str(ROOT))

from chalicelib.storage.table import TTL_ATTRIBUTE, table_definition  # noqa: E402

CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
APP_NAME = "voipbin-chat"  # .chalice/config.json's app_name
STREAM_HANDLER = "on_table_change"  # the @app.on_dynamodb_record function in app.py


@dataclass(frozen=True)
class Function:
    """A Lambda function of the app, as Chalice names it."""

    cfn_id: str  # Chalice's logical id in `chalice package`'s template
    resource_name: str  # Chalice's name for it (.chalice/deployed/<stage>.json, config's lambda_functions)
    suffix: str  # after "<app>-<stage>" in the name `chalice deploy` gives it
    role_id: str  # the role Chalice makes for it (autogen_policy false: one per function)
    log_group_id: str  # the id Chalice gives its log group, so log_retention_in_days would merge in

    def name(self, stage: Stage) -> str:
        return f"{APP_NAME}-{stage.name}{self.suffix}"

    def role_name(self, stage: Stage) -> str:
        """The role `chalice deploy` makes for it (autogen_policy false)."""
        return f"{APP_NAME}-{stage.name}-{self.resource_name}"


API_FUNCTION = Function("APIHandler", "api_handler", "", "ApiHandlerRole", "ApiHandlerLogGroup")
STREAM_FUNCTION = Function("OnTableChange", STREAM_HANDLER, f"-{STREAM_HANDLER}", "OnTableChangeRole",
                           "OnTableChangeLogGroup")
FUNCTIONS = (
    API_FUNCTION,
    STREAM_FUNCTION,
    Function("WebsocketConnect", "websocket_connect", "-websocket_connect", "WebsocketConnectRole",
             "WebsocketConnectLogGroup"),
    Function("WebsocketMessage", "websocket_message", "-websocket_message", "WebsocketMessageRole",
             "WebsocketMessageLogGroup"),
    Function("WebsocketDisconnect", "websocket_disconnect", "-websocket_disconnect", "WebsocketDisconnectRole",
             "WebsocketDisconnectLogGroup"),
)
# The functions that push to websocket connections (chalicelib/realtime/delivery.py):
# the stream handler (events) and $default (pong).
PUSHING_FUNCTION_IDS = ("OnTableChange", "WebsocketMessage")

# Logical ids of what else Chalice generates (chalice.utils.to_cfn_resource_name).
STREAM_EVENT_ID = "OnTableChangeDynamodbEventSource"
WEBSOCKET_API_ID = "WebsocketAPI"
# Logical ids this template adds.
TABLE_ID = "ChatTable"
QUEUE_ID = "StreamFailureQueue"
EVENT_BUS_ID = "EventBus"
PUSH_POLICY_ID = "WebsocketPushPolicy"
PUSH_POLICY_NAME = "WebsocketPush"  # the pushing roles' inline policy (make deploy puts it after Chalice)

# The DynamoDB actions the code performs (tests/test_deploy.py checks this
# against the PynamoDB calls in chalicelib). Transactions need no action of
# their own: IAM checks each Put/Update/Delete inside TransactWriteItems as
# PutItem/UpdateItem/DeleteItem. PynamoDB 6 takes the schema from the models
# and never calls DescribeTable.
TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",  # a send's membership check, chatrooms' chats, websocket audiences
    "dynamodb:BatchWriteItem",  # chatrooms and members past the 48 of a transaction
    "dynamodb:ConditionCheckItem",  # the fan-out checks each chatroom is live beside its copy
    "dynamodb:DeleteItem",  # pair guards, members and websocket connections, inside transactions
    "dynamodb:GetItem",  # every load by id
    "dynamodb:PutItem",  # sends, and every Put inside a transaction
    "dynamodb:Query",  # a chat's members (services/membership.py)
    "dynamodb:UpdateItem",  # changes and soft deletes
)
INDEX_ACTIONS = ("dynamodb:Query",)  # every list and relation is a Query on a GSI; none on the table
STREAM_ACTIONS = (  # what Lambda's event source mapping needs to read the stream
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")  # the log groups are the stack's own


@dataclass(frozen=True)
class Stage:
    name: str
    deletion_protection: bool  # DeletionProtectionEnabled and DeletionPolicy Retain on the table
    log_level: str  # Lambda ApplicationLogLevel: INFO, WARN or ERROR (never DEBUG: botocore would log the secret)
    log_retention_days: int
    max_retry_attempts: int  # per failing record (bisection narrows a batch down to it first)
    max_record_age_seconds: int  # the stream keeps records 24 h; give up well before
    # Batches of one shard processed at once (1 to 10): records of different items
    # in different concurrent batches, so one large fan-out never holds back another
    # chat (README, Large groups). Records of one item stay in order.
    parallelization_factor: int

    @property
    def table_name(self) -> str:
        return f"{APP_NAME}-{self.name}"

    @property
    def jwt_secret_parameter(self) -> str:
        return f"/{APP_NAME}/{self.name}/jwt-secret"

    @property
    def failure_queue_name(self) -> str:
        return f"{APP_NAME}-{self.name}-stream-failures"

    @property
    def event_bus_name(self) -> str:
        return f"{APP_NAME}-{self.name}"

    @property
    def stack_name(self) -> str:
        """make deploy's stack: what `chalice deploy` cannot create."""
        return f"{APP_NAME}-{self.name}-base"

    @property
    def package_stack_name(self) -> str:
        """The stack of the CloudFormation-only path (make package, then the AWS CLI)."""
        return f"{APP_NAME}-{self.name}"

    @property
    def websocket_api_name(self) -> str:
        """The name `chalice deploy` gives the websocket API."""
        return f"{APP_NAME}-{self.name}-websocket-api"

    @property
    def api_gateway_stage(self) -> str:
        """The REST and websocket APIs' stage (Chalice's api_gateway_stage)."""
        config = json.loads(CHALICE_CONFIG.read_text())
        return config["stages"].get(self.name, {}).get("api_gateway_stage", config.get("api_gateway_stage", "api"))


STAGES = {
    "dev": Stage("dev", deletion_protection=False, log_level="INFO", log_retention_days=14,
                 max_retry_attempts=5, max_record_age_seconds=3600, parallelization_factor=10),
    "prod": Stage("prod", deletion_protection=True, log_level="WARN", log_retention_days=90,
                  max_retry_attempts=5, max_record_age_seconds=3600, parallelization_factor=10),
}

# IAM policy ARNs are static (Chalice copies the policy file into the template
# as it is), so they name the stage's resources by name in any region of the
# account that deploys them: standard partition ("aws") only.
ARN = "arn:aws:{service}:*:*:{resource}"


def table_arn(stage: Stage) -> str:
    return ARN.format(service="dynamodb", resource=f"table/{stage.table_name}")


def log_group_name(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def table_resource(stage: Stage) -> dict[str, Any]:
    """The table as CloudFormation wants it, from the CreateTable arguments."""
    definition = table_definition(stage.table_name)
    same_in_cloudformation = {"TableName", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
                              "LocalSecondaryIndexes", "BillingMode"}
    properties: dict[str, Any] = {}
    for key, value in definition.items():
        if key in same_in_cloudformation:
            properties[key] = value
        elif key == "StreamSpecification":  # CloudFormation: a view type means enabled
            if not value.get("StreamEnabled"):
                raise ValueError("the fan-out needs the table's stream")
            properties[key] = {"StreamViewType": value["StreamViewType"]}
        else:
            raise ValueError(f"table_definition has {key!r}: teach infra/build_template.py its CloudFormation form")
    properties.update(
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
        DeletionProtectionEnabled=stage.deletion_protection,
    )
    policy = "Retain" if stage.deletion_protection else "Delete"
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": policy,
        "UpdateReplacePolicy": policy,
        "Properties": properties,
    }


def websocket_endpoint(stage: Stage) -> dict[str, Any]:
    """The management endpoint of the websocket API (https, not wss)."""
    return {"Fn::Sub": f"https://${{{WEBSOCKET_API_ID}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
                       f"/{stage.api_gateway_stage}"}


def stack_environment(stage: Stage) -> dict[str, Any]:
    """Each function's environment, as CloudFormation values of the stage's
    resources. The make deploy stack outputs them (`output_name`) and make
    deploy copies them into .chalice/config.json; the make package merge puts
    them into the functions. CHAT_WEBSOCKET_ENDPOINT comes on top: Chalice makes
    the websocket API, so its id is known only after `chalice deploy`."""
    return {
        "CHAT_TABLE_NAME": {"Ref": TABLE_ID},
        # Read by app.py when Chalice imports it, for the stream event source.
        "CHAT_STREAM_ARN": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]},
        "CHAT_EVENT_BUS": {"Fn::GetAtt": [EVENT_BUS_ID, "Name"]},
        # The name of an SSM SecureString that you create, never its value.
        "CHAT_JWT_SECRET_PARAMETER": stage.jwt_secret_parameter,
    }


def output_name(variable: str) -> str:
    """The stack output that holds an environment variable: CHAT_TABLE_NAME -> ChatTableName."""
    return "".join(word.capitalize() for word in variable.split("_"))


def function_overrides(stage: Stage, function: Function) -> dict[str, Any]:
    return {
        "FunctionName": function.name(stage),
        "Environment": {"Variables": {**stack_environment(stage),
                                      "CHAT_WEBSOCKET_ENDPOINT": websocket_endpoint(stage)}},
        "LoggingConfig": logging_config(stage, {"Ref": function.log_group_id}),
    }


def logging_config(stage: Stage, log_group: Any) -> dict[str, Any]:
    """Lambda's LoggingConfig: JSON lines at the stage's level."""
    if stage.log_level not in ("INFO", "WARN", "ERROR"):
        raise ValueError("log level: INFO, WARN or ERROR (DEBUG logs botocore's responses, the JWT secret among them)")
    return {"LogFormat": "JSON", "ApplicationLogLevel": stage.log_level, "SystemLogLevel": "WARN",
            "LogGroup": log_group}


def stage_resources(stage: Stage) -> dict[str, Any]:
    """What every stage has besides Chalice's functions, roles and APIs, in
    both paths: the table, the failure queue, the event bus, the log groups."""
    def log_group(function_name: str) -> dict[str, Any]:
        return {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {"LogGroupName": log_group_name(function_name), "RetentionInDays": stage.log_retention_days},
        }

    return {
        TABLE_ID: table_resource(stage),
        QUEUE_ID: {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Delete",  # holds only pointers into the stream, which keeps records 24 h
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "QueueName": stage.failure_queue_name,
                "MessageRetentionPeriod": 14 * 24 * 3600,
                "SqsManagedSseEnabled": True,
            },
        },
        EVENT_BUS_ID: {
            "Type": "AWS::Events::EventBus",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {"Name": stage.event_bus_name},
        },
        **{f.log_group_id: log_group(f.name(stage)) for f in FUNCTIONS},
    }


def stack_template(stage: Stage) -> dict[str, Any]:
    """make deploy's stack for one stage (infra/stack-<stage>.json)."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{APP_NAME} ({stage.name}): what `chalice deploy` cannot create: the table, the event bus, "
                       "the stream failure queue, the log groups. `make deploy` deploys it, then Chalice's app.",
        "Metadata": {"GeneratedBy": "infra/build_template.py from chalicelib/storage/table.py; do not edit by hand"},
        "Resources": stage_resources(stage),
        "Outputs": {
            **{output_name(variable): {"Description": f"{variable} of every function (.chalice/config.json)",
                                       "Value": value}
               for variable, value in stack_environment(stage).items()},
            "StreamFailureQueueArn": {"Description": "on-failure destination of the stream mapping",
                                      "Value": {"Fn::GetAtt": [QUEUE_ID, "Arn"]}},
        },
    }


def push_policy_document(connections: Any) -> dict[str, Any]:
    """execute-api:ManageConnections on one websocket API's stage: its `@connections` ARN."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "WebsocketPush", "Effect": "Allow", "Action": ["execute-api:ManageConnections"],
                       "Resource": connections}],
    }


def push_policy(stage: Stage) -> dict[str, Any]:
    """execute-api:ManageConnections on this stack's websocket API, attached to
    the roles of the functions that push."""
    connections = (f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{WEBSOCKET_API_ID}}}"
                   f"/{stage.api_gateway_stage}/POST/@connections/*")
    by_id = {function.cfn_id: function for function in FUNCTIONS}
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": PUSH_POLICY_NAME,
            "Roles": [{"Ref": by_id[cfn_id].role_id} for cfn_id in PUSHING_FUNCTION_IDS],
            "PolicyDocument": push_policy_document({"Fn::Sub": connections}),
        },
    }


def merge_template(stage: Stage) -> dict[str, Any]:
    """The template `chalice package --merge-template` deep-merges into its own."""
    functions: dict[str, Any] = {f.cfn_id: {"Properties": function_overrides(stage, f)} for f in FUNCTIONS}
    for cfn_id in PUSHING_FUNCTION_IDS:  # no push before the permission to
        functions[cfn_id]["DependsOn"] = [PUSH_POLICY_ID]
    functions[STREAM_FUNCTION.cfn_id]["Properties"]["Events"] = {
        STREAM_EVENT_ID: {
            "Properties": {
                "Stream": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]},
                **stream_mapping_settings(stage, {"Fn::GetAtt": [QUEUE_ID, "Arn"]}),
            }
        }
    }
    return {
        "Description": f"{APP_NAME} ({stage.name}): chat API, stream fan-out and their table. "
                       f"Chalice's template merged with infra/resources-{stage.name}.json.",
        "Metadata": {
            "GeneratedBy": "infra/build_template.py from chalicelib/storage/table.py; do not edit by hand",
            "StreamArn": "The stream event source reads the stream of ChatTable in this stack (Fn::GetAtt); "
                         "the CHAT_STREAM_ARN seen by `chalice package` is replaced.",
        },
        "Resources": {
            **stage_resources(stage),
            PUSH_POLICY_ID: push_policy(stage),
            **functions,
        },
        "Outputs": {
            "TableName": {"Value": {"Ref": TABLE_ID}},
            "TableStreamArn": {"Value": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]}},
            "StreamFailureQueueUrl": {"Value": {"Ref": QUEUE_ID}},
            "JwtSecretParameter": {"Value": stage.jwt_secret_parameter},
            "EventBusName": {"Value": {"Ref": EVENT_BUS_ID}},
        },
    }


def stream_mapping_settings(stage: Stage, queue_arn: Any) -> dict[str, Any]:
    """The stream mapping's settings that Chalice's on_dynamodb_record cannot
    express (the same names in CloudFormation and in UpdateEventSourceMapping):
    failure handling, and concurrent batches per shard."""
    return {
        "ParallelizationFactor": stage.parallelization_factor,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": stage.max_retry_attempts,
        "MaximumRecordAgeInSeconds": stage.max_record_age_seconds,
        "DestinationConfig": {"OnFailure": {"Destination": queue_arn}},
    }


def policy(stage: Stage) -> dict[str, Any]:
    """The policy of every function's role (Chalice makes one role per function
    with autogen_policy false, each with this stage's file)."""
    table = table_arn(stage)
    indexes = [f"{table}/index/{index['IndexName']}" for index in table_definition(stage.table_name)
               .get("GlobalSecondaryIndexes", [])]
    log_groups = [function.name(stage) for function in FUNCTIONS]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "TableItems", "Effect": "Allow", "Action": list(TABLE_ACTIONS), "Resource": table},
            {"Sid": "TableIndexQueries", "Effect": "Allow", "Action": list(INDEX_ACTIONS), "Resource": indexes},
            {"Sid": "TableStreamRead", "Effect": "Allow", "Action": list(STREAM_ACTIONS),
             "Resource": f"{table}/stream/*"},
            # SecureString under the account's default aws/ssm key: that key's
            # policy lets SSM decrypt for any principal allowed GetParameter,
            # so no kms:Decrypt here. A customer-managed key needs kms:Decrypt
            # on that key added (README).
            {"Sid": "JwtSecretRead", "Effect": "Allow", "Action": ["ssm:GetParameter"],
             "Resource": ARN.format(service="ssm", resource=f"parameter{stage.jwt_secret_parameter}")},
            {"Sid": "StreamFailureQueueSend", "Effect": "Allow", "Action": ["sqs:SendMessage"],
             "Resource": ARN.format(service="sqs", resource=stage.failure_queue_name)},
            {"Sid": "EventBusPut", "Effect": "Allow", "Action": ["events:PutEvents"],
             "Resource": ARN.format(service="events", resource=f"event-bus/{stage.event_bus_name}")},
            {"Sid": "OwnLogGroups", "Effect": "Allow", "Action": list(LOG_ACTIONS),
             "Resource": [ARN.format(service="logs", resource=f"log-group:{log_group_name(name)}:*")
                          for name in log_groups]},
        ],
    }


def outputs() -> dict[Path, str]:
    """Every file this script owns, and its content."""
    def dump(document: dict[str, Any]) -> str:
        return json.dumps(document, indent=2) + "\n"

    files = {}
    for stage in STAGES.values():
        files[ROOT / "infra" / f"stack-{stage.name}.json"] = dump(stack_template(stage))
        files[ROOT / "infra" / f"resources-{stage.name}.json"] = dump(merge_template(stage))
        files[ROOT / ".chalice" / f"policy-{stage.name}.json"] = dump(policy(stage))
    return files


def stale() -> list[Path]:
    return [path for path, text in outputs().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs")
    args = parser.parse_args(argv)
    if args.check:
        paths = stale()
        for path in paths:
            print(f"stale: {path.relative_to(ROOT)} (run: python infra/build_template.py)", file=sys.stderr)
        return 1 if paths else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
