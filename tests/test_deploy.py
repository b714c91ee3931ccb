"""The deployable stack, checked offline: `chalice package` for each stage (pip
reads only the wheelhouse `make` downloaded while setting up), cfn-lint on the
merged template, and the wiring no linter knows about: the stream, the failure
settings, the websocket and event bus settings, least-privilege IAM, the table
as the code defines it, the files' bucket's settings, the zip size."""

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.services import files
from chalicelib.storage import objects
from chalicelib.storage.table import TTL_ATTRIBUTE, table_definition
from infra import build_template, package
from infra.build_template import FUNCTIONS, STAGES

ROOT = Path(__file__).resolve().parent.parent
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-2"]
ZIPPED_LIMIT = 50 * 2**20  # Lambda: direct upload of a zip
UNZIPPED_LIMIT = 250 * 2**20  # Lambda: function and layers, unzipped


# ---- packaging, once per stage per session -------------------------------------

@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of what Chalice packages, so its cached zip in .chalice/deployments
    never stands in for a real (offline) pip run, and edits made meanwhile by
    others do not race the build."""
    copy = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "app.py", copy)
    shutil.copy(ROOT / "requirements.txt", copy)
    shutil.copytree(ROOT / "chalicelib", copy / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".chalice").mkdir()
    for config in (ROOT / ".chalice").glob("*.json"):
        shutil.copy(config, copy / ".chalice")
    return copy


@pytest.fixture(scope="module")
def packaged(project, tmp_path_factory):
    """stage -> (template, deployment zip, chalice's log); dev builds the zip
    with pip, prod reuses it (same code, same requirements)."""
    out = {}
    for stage in STAGES:
        out_dir = tmp_path_factory.mktemp(f"package-{stage}")
        result = package.package(stage, out_dir, project_dir=project, debug=True)
        out[stage] = (json.loads((out_dir / "sam.json").read_text()), out_dir / "deployment.zip", result.stderr)
    return out


@pytest.fixture(params=sorted(STAGES))
def stage(request):
    return STAGES[request.param]


@pytest.fixture
def template(packaged, stage):
    return packaged[stage.name][0]


def resources_of_type(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def cfn_lint(path):
    result = subprocess.run([str(CFN_LINT), "--format", "parseable", "--regions", *LINT_REGIONS, "--", str(path)],
                            capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


# ---- the generated files and the Chalice configuration -----------------------

def test_generated_files_match_the_code():
    """infra/resources-<stage>.json and .chalice/policy-<stage>.json are what
    infra/build_template.py writes from table_definition and its stage list."""
    stale = [str(path.relative_to(ROOT)) for path in build_template.stale()]
    assert not stale, f"stale: {stale}; run `python infra/build_template.py` (make package does)"


def test_chalice_config_has_both_stages_with_their_policy_files():
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["app_name"] == build_template.APP_NAME
    assert config["autogen_policy"] is False
    assert set(config["stages"]) == set(STAGES)
    for name, settings in config["stages"].items():
        assert settings["iam_policy_file"] == f"policy-{name}.json"
        assert settings["lambda_memory_size"] >= 128 and 1 <= settings["lambda_timeout"] <= 29
        assert settings["lambda_functions"][build_template.STREAM_HANDLER]["lambda_timeout"] <= 900


def test_chalice_config_traces_every_function_and_reserves_the_streams_concurrency():
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["xray"] is True  # every function's TracingConfig Active, and the REST stage's tracing
    for name, stage in STAGES.items():
        stream = config["stages"][name]["lambda_functions"][build_template.STREAM_HANDLER]
        assert stream["reserved_concurrency"] == stage.stream_reserved_concurrency
        assert all("reserved_concurrency" not in settings for function, settings in
                   config["stages"][name]["lambda_functions"].items() if function != build_template.STREAM_HANDLER)


def test_chalice_config_names_each_stages_resources_and_no_secret():
    """The committed environment of each stage: what is the same in every
    account. make deploy adds the rest (stream ARN, websocket endpoint) from
    the stack and the websocket API it finds."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert "environment_variables" not in config  # per stage only: no stage can read another's
    for name, stage in STAGES.items():
        variables = config["stages"][name]["environment_variables"]
        assert variables == {"CHAT_TABLE_NAME": stage.table_name, "CHAT_EVENT_BUS": stage.event_bus_name,
                             "CHAT_JWT_SECRET_PARAMETER": stage.jwt_secret_parameter,
                             "CHAT_CORS_ORIGINS": ",".join(stage.files_cors_origins), "CHAT_STAGE": stage.name}
        assert set(variables) < set(build_template.stack_environment(stage)) | {"CHAT_WEBSOCKET_ENDPOINT"}
        for function in config["stages"][name].get("lambda_functions", {}).values():
            assert "environment_variables" not in function


def test_the_test_client_keeps_the_stage_environment_out_of_the_tests():
    """Chalice's test client would copy the `dev` stage's variables into
    os.environ around every request (and, under concurrent requests, leave
    them there: CHAT_TABLE_NAME=voipbin-chat-dev for the whole suite).
    tests/conftest.py turns that copy off."""
    import chalice.test

    from app import app

    with chalice.test.Client(app) as client:
        staged = client.http._config.scope("dev", "api_handler").environment_variables
        assert staged["CHAT_TABLE_NAME"] == "voipbin-chat-dev"  # what would leak
        before = dict(os.environ)
        with client.http._patched_env_vars(staged):
            assert dict(os.environ) == before
    assert os.environ["CHAT_TABLE_NAME"] != "voipbin-chat-dev" and "CHAT_EVENT_BUS" not in os.environ


# ---- make deploy's stack (infra/stack-<stage>.json) ------------------------

def test_cfn_lint_passes_on_the_stage_stack(stage):
    returncode, output = cfn_lint(ROOT / "infra" / f"stack-{stage.name}.json")
    assert returncode == 0, output


def test_both_paths_deploy_the_same_table_bucket_queue_bus_and_log_groups(stage):
    stack = build_template.stack_template(stage)["Resources"]
    merged = build_template.merge_template(stage)["Resources"]
    assert set(stack) == {build_template.TABLE_ID, build_template.FILES_BUCKET_ID,
                          build_template.FILES_BUCKET_POLICY_ID, build_template.QUEUE_ID,
                          build_template.EVENT_BUS_ID, build_template.ALARM_TOPIC_ID,
                          *(f.log_group_id for f in FUNCTIONS)}
    for name, resource in stack.items():
        assert merged[name] == resource, name
    assert not [r for r in stack.values() if r["Type"].startswith(("AWS::Lambda::", "AWS::IAM::", "AWS::ApiGateway"))]


def test_the_stack_outputs_every_variable_make_deploy_copies_into_the_config(stage):
    outputs = build_template.stack_template(stage)["Outputs"]
    for variable, value in build_template.stack_environment(stage).items():
        assert outputs[build_template.output_name(variable)]["Value"] == value, variable
    assert outputs["StreamFailureQueueArn"]["Value"] == {"Fn::GetAtt": [build_template.QUEUE_ID, "Arn"]}
    assert "CHAT_JWT_SECRET" not in build_template.stack_environment(stage)


def test_make_deploy_and_undeploy_run_infra_deploy():
    for target, flags in (("deploy", ""), ("undeploy", ""), ("deploy", "REPAIR=1")):
        result = subprocess.run(["make", "-n", target, "STAGE=prod", *flags.split()], cwd=ROOT,
                                capture_output=True, text=True)
        line = f"infra/deploy.py {target} --stage prod" + (" --repair" if flags else "")
        assert line in result.stdout, result.stdout + result.stderr


# ---- chalice package, offline ----------------------------------------------

def test_chalice_package_runs_offline_for_each_stage(packaged):
    for stage, (template, zip_path, _) in packaged.items():
        assert template["Resources"], stage
        assert zip_path.stat().st_size > 0, stage
    # dev really ran pip (against the wheelhouse only: PIP_NO_INDEX, closed proxy)
    assert "calling pip download" in packaged["dev"][2]


def test_offline_environment_leaves_pip_no_way_out():
    env = package.offline_env(Path("/wheels"), base={"NO_PROXY": "*", "AWS_PROFILE": "someone"})
    assert env["PIP_NO_INDEX"] == "1" and env["PIP_FIND_LINKS"] == "/wheels"
    assert "NO_PROXY" not in env and "AWS_PROFILE" not in env
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"


def test_cfn_lint_passes_on_the_merged_template(packaged, stage, tmp_path):
    path = tmp_path / "sam.json"
    path.write_text(json.dumps(packaged[stage.name][0]))
    returncode, output = cfn_lint(path)
    assert returncode == 0, output


def test_cfn_lint_passes_on_the_parts_sam_expands(template, tmp_path):
    """cfn-lint validates SAM resources loosely (not the event source's
    properties) and skips IAM action names in SAM templates. So lint, as plain
    CloudFormation, what SAM turns our parts into: functions, the event source
    mapping, and the roles with their policies."""
    resources = {}
    for name, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Serverless::Function":
            keep = ("FunctionName", "Runtime", "Handler", "Role", "Timeout", "MemorySize", "Architectures",
                    "Environment", "LoggingConfig", "TracingConfig")
            function = {key: props[key] for key in keep if key in props}
            function["Code"] = {"S3Bucket": "deployment-artifacts", "S3Key": "deployment.zip"}
            resources[name] = {"Type": "AWS::Lambda::Function", "Properties": function,
                               **({"DependsOn": resource["DependsOn"]} if "DependsOn" in resource else {})}
            for event_name, event in props.get("Events", {}).items():
                assert event["Type"] == "DynamoDB"
                mapping = dict(event["Properties"])
                mapping["EventSourceArn"] = mapping.pop("Stream")
                mapping["FunctionName"] = {"Ref": name}
                resources[name + event_name] = {"Type": "AWS::Lambda::EventSourceMapping", "Properties": mapping}
        elif kind.startswith("AWS::Serverless::") or "RestAPI" in json.dumps(resource):
            continue  # the REST API (a SAM resource) and what refers to it: Chalice's own, linted above
        else:
            resources[name] = resource
    path = tmp_path / "expanded.json"
    path.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Parameters": template["Parameters"],
                                "Conditions": template["Conditions"], "Resources": resources}))
    returncode, output = cfn_lint(path)
    assert returncode == 0, output


# ---- the wiring --------------------------------------------------------------

def test_the_table_is_the_one_the_code_defines(template, stage):
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    assert list(tables) == [build_template.TABLE_ID]
    table = tables[build_template.TABLE_ID]
    props = table["Properties"]
    definition = table_definition(stage.table_name)
    for key in ("TableName", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"):
        assert props[key] == definition[key], key
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert props["DeletionProtectionEnabled"] is (stage.name == "prod")
    if stage.name == "prod":
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_the_stream_handler_reads_this_tables_stream_and_reports_failures(template, stage):
    functions = resources_of_type(template, "AWS::Serverless::Function")
    events = [(name, event) for name, function in functions.items()
              for event in function["Properties"].get("Events", {}).values()]
    assert len(events) == 1, events
    function_name, event = events[0]
    assert function_name == build_template.STREAM_FUNCTION.cfn_id
    assert functions[function_name]["Properties"]["Handler"] == f"app.{build_template.STREAM_HANDLER}"
    assert event["Type"] == "DynamoDB"
    props = event["Properties"]
    assert props["Stream"] == {"Fn::GetAtt": [build_template.TABLE_ID, "StreamArn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 <= props["MaximumRetryAttempts"] <= 10  # -1 (the default) retries until the record expires
    assert 60 <= props["MaximumRecordAgeInSeconds"] <= 24 * 3600  # -1: as long as the stream keeps it
    # concurrent batches per shard, so one large fan-out never holds back another chat (1 to 10)
    assert props["ParallelizationFactor"] == stage.parallelization_factor == 10
    queue = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert queue == {"Fn::GetAtt": [build_template.QUEUE_ID, "Arn"]}
    assert template["Resources"][build_template.QUEUE_ID]["Type"] == "AWS::SQS::Queue"


def test_every_function_knows_the_table_and_where_the_secret_is(template, stage):
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert set(functions) == {function.cfn_id for function in FUNCTIONS}
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["CHAT_TABLE_NAME"] == {"Ref": build_template.TABLE_ID}, name
        assert variables["CHAT_JWT_SECRET_PARAMETER"] == stage.jwt_secret_parameter, name
        assert variables["CHAT_FILES_BUCKET"] == {"Ref": build_template.FILES_BUCKET_ID}, name
        assert "CHAT_JWT_SECRET" not in variables, "the secret itself never goes into the template"
        assert function["Properties"]["LoggingConfig"]["ApplicationLogLevel"] in ("INFO", "WARN", "ERROR")
    assert template["Resources"][build_template.TABLE_ID]["Properties"]["TableName"] == stage.table_name


def test_every_function_can_reach_the_websocket_api_and_the_event_bus_of_its_stack(template):
    resources = template["Resources"]
    (api_id,) = resources_of_type(template, "AWS::ApiGatewayV2::Api")
    (websocket_stage,) = resources_of_type(template, "AWS::ApiGatewayV2::Stage").values()
    assert websocket_stage["Properties"]["ApiId"] == {"Ref": api_id}
    management = (f"https://${{{api_id}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
                  f"/{websocket_stage['Properties']['StageName']}")
    (bus_id,) = resources_of_type(template, "AWS::Events::EventBus")
    for name, function in resources_of_type(template, "AWS::Serverless::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["CHAT_WEBSOCKET_ENDPOINT"] == {"Fn::Sub": management}, name
        assert variables["CHAT_EVENT_BUS"] == {"Fn::GetAtt": [bus_id, "Name"]}, name
    assert resources[bus_id]["Properties"]["Name"]


def statements(template, stage):
    """The statements of every policy of every role: each function has its own
    role with the stage's policy file; the websocket push policy of the template
    is attached to the roles of the functions that push, and to no other; the
    files' policy to the API handler's role, and to no other."""
    roles = resources_of_type(template, "AWS::IAM::Role")
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert {name: f["Properties"]["Role"] for name, f in functions.items()} == {
        function.cfn_id: {"Fn::GetAtt": [function.role_id, "Arn"]} for function in FUNCTIONS}
    assert set(roles) == {function.role_id for function in FUNCTIONS}
    policy_file = json.loads((ROOT / ".chalice" / f"policy-{stage.name}.json").read_text())
    found = []
    for name, role in roles.items():
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "lambda.amazonaws.com"}
        assert "ManagedPolicyArns" not in role["Properties"], name
        documents = [policy["PolicyDocument"] for policy in role["Properties"]["Policies"]]
        assert documents == [policy_file], name
        found += [s for document in documents for s in document["Statement"]]
    attached = resources_of_type(template, "AWS::IAM::Policy")
    assert set(attached) == {build_template.PUSH_POLICY_ID, build_template.FILES_ACCESS_POLICY_ID,
                             build_template.FAILED_RECORDS_POLICY_ID}
    failures_roles = attached[build_template.FAILED_RECORDS_POLICY_ID]["Properties"]["Roles"]
    assert failures_roles == [{"Ref": build_template.STREAM_FUNCTION.role_id}]
    pushing_roles = [{"Ref": f.role_id} for f in FUNCTIONS if f.cfn_id in build_template.PUSHING_FUNCTION_IDS]
    assert attached[build_template.PUSH_POLICY_ID]["Properties"]["Roles"] == pushing_roles
    files_roles = attached[build_template.FILES_ACCESS_POLICY_ID]["Properties"]["Roles"]
    assert files_roles == [{"Ref": build_template.API_FUNCTION.role_id},
                           {"Ref": build_template.STREAM_FUNCTION.role_id}]  # exports and erasures
    for policy in attached.values():
        found += policy["Properties"]["PolicyDocument"]["Statement"]
    assert not resources_of_type(template, "AWS::IAM::ManagedPolicy")
    return found


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_iam_names_no_wildcard_resource_and_only_this_stages_resources(template, stage):
    table = build_template.table_arn(stage)
    allowed = {
        table,
        *(f"{table}/index/{i['IndexName']}" for i in table_definition(stage.table_name)["GlobalSecondaryIndexes"]),
        f"{table}/stream/*",
        f"arn:aws:ssm:*:*:parameter{stage.jwt_secret_parameter}",
        f"arn:aws:ssm:*:*:parameter{stage.jwt_secret_parameter}-previous",  # rotation: the previous secret
        f"arn:aws:secretsmanager:*:*:secret:{stage.jwt_secret_id}-??????",
        f"arn:aws:sqs:*:*:{stage.failure_queue_name}",
        f"arn:aws:events:*:*:event-bus/{stage.event_bus_name}",
        *(f"arn:aws:logs:*:*:log-group:/aws/lambda/{function.name(stage)}:*" for function in FUNCTIONS),
        # the websocket API of this stack, its stage's connections only
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebsocketAPI}"
        f"/{stage.api_gateway_stage}/POST/@connections/*",
        # the files' bucket of this stack (its name is generated), and its keys
        json.dumps({"Fn::GetAtt": ["FilesBucket", "Arn"]}),
        json.dumps({"Fn::Sub": "${FilesBucket.Arn}/*"}),
        # the stream's failed records, under their prefix only (make redrive)
        json.dumps({"Fn::Sub": "${FilesBucket.Arn}/stream-failures/*"}),
    }
    for statement in statements(template, stage):
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
        if statement["Resource"] == "*":  # X-Ray's write actions alone: they have no resource to name
            assert statement == {"Sid": "XRayTraces", "Effect": "Allow",
                                 "Action": list(build_template.XRAY_ACTIONS), "Resource": "*"}
            continue
        for resource in as_list(statement["Resource"]):
            if isinstance(resource, dict):
                if "Fn::Sub" in resource and "WebsocketAPI" in resource["Fn::Sub"]:
                    (resource,) = resource.values()
                else:
                    resource = json.dumps(resource)
            assert resource != "*" and resource.split(":")[5:] != ["*"], statement
            assert resource in allowed, resource
        for action in as_list(statement["Action"]):
            assert "*" not in action, action


def test_iam_names_what_the_stack_creates(template, stage):
    """The policy's names (static JSON) are the names the merged template gives."""
    resources = template["Resources"]
    assert resources[build_template.TABLE_ID]["Properties"]["TableName"] == stage.table_name
    assert resources[build_template.QUEUE_ID]["Properties"]["QueueName"] == stage.failure_queue_name
    assert resources[build_template.EVENT_BUS_ID]["Properties"]["Name"] == stage.event_bus_name
    assert resources["WebsocketAPIStage"]["Properties"]["StageName"] == stage.api_gateway_stage
    for function in FUNCTIONS:
        props = resources[function.cfn_id]["Properties"]
        assert props["FunctionName"] == function.name(stage)
        assert props["LoggingConfig"]["LogGroup"] == {"Ref": function.log_group_id}
        assert resources[function.log_group_id]["Properties"]["LogGroupName"] == f"/aws/lambda/{function.name(stage)}"


# PynamoDB calls -> the IAM action each needs, and on what. Calls with common
# names (dict.get, set.update, ...) also match, but only ever as actions that
# are granted anyway; what matters is that a new kind of call is noticed.
PYNAMODB_CALLS = {
    "get": "dynamodb:GetItem", "refresh": "dynamodb:GetItem", "batch_get": "dynamodb:BatchGetItem",
    "save": "dynamodb:PutItem", "update": "dynamodb:UpdateItem", "delete": "dynamodb:DeleteItem",
    "batch_write": "dynamodb:BatchWriteItem", "condition_check": "dynamodb:ConditionCheckItem",
    "query": "dynamodb:Query", "count": "dynamodb:Query", "scan": "dynamodb:Scan",
    "exists": "dynamodb:DescribeTable", "describe_table": "dynamodb:DescribeTable",
    "get_item": "dynamodb:GetItem", "put_item": "dynamodb:PutItem", "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem", "batch_get_item": "dynamodb:BatchGetItem",
    "batch_write_item": "dynamodb:BatchWriteItem", "transact_get_items": "dynamodb:GetItem",
    "execute_statement": "dynamodb:PartiQLSelect",
}
NOT_DEPLOYED_CODE = ("chalicelib/storage/table.py",)


def dynamodb_calls_in_the_code():
    """{(action, "table" | "index"): [where]} for every DynamoDB call that Lambda runs."""
    found = {}
    sources = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    for path in sources:
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(NOT_DEPLOYED_CODE):
            continue  # create_table (the local runner and tests only)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name) and node.id == "TransactGet":
                found.setdefault(("dynamodb:GetItem", "table"), []).append(f"{relative}:{node.lineno}")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            action = PYNAMODB_CALLS.get(node.func.attr)
            if action is None:
                continue
            receiver = node.func.value
            if node.func.attr == "exists" and not isinstance(receiver, ast.Name):
                continue  # Model.exists() describes the table; SomeItem.attribute.exists() is a condition
            on_index = isinstance(receiver, ast.Attribute) and receiver.attr.endswith("index")
            found.setdefault((action, "index" if on_index else "table"), []).append(f"{relative}:{node.lineno}")
    return found


def test_iam_grants_exactly_the_dynamodb_actions_the_code_uses(template, stage):
    table = build_template.table_arn(stage)
    granted = set()
    for statement in statements(template, stage):
        for resource in as_list(statement["Resource"]):
            if not isinstance(resource, str):
                continue  # Fn::Sub: the websocket API
            where = "index" if resource.startswith(f"{table}/index/") else "table" if resource == table else None
            if where:
                granted |= {(action, where) for action in as_list(statement["Action"])}
    used = dynamodb_calls_in_the_code()
    missing = {key: where for key, where in used.items() if key not in granted}
    assert not missing, f"the code needs these, the policy lacks them (infra/build_template.py): {missing}"
    unused = granted - set(used)
    assert not unused, f"the policy grants what no code calls: {unused}"
    stream_actions = {a for s in statements(template, stage) if s["Resource"] == f"{table}/stream/*"
                      for a in as_list(s["Action"])}
    assert stream_actions == set(build_template.STREAM_ACTIONS)


def test_secret_queue_bus_and_websocket_permissions(template, stage):
    by_action = {}
    for statement in statements(template, stage):
        for action in as_list(statement["Action"]):
            resources = by_action.setdefault(action, [])
            resources += [r for r in as_list(statement["Resource"]) if r not in resources]  # each role has them
    # the current and the previous secret (rotation), read in one GetParameters
    assert by_action["ssm:GetParameters"] == [f"arn:aws:ssm:*:*:parameter{stage.jwt_secret_parameter}",
                                              f"arn:aws:ssm:*:*:parameter{stage.jwt_secret_parameter}-previous"]
    assert "ssm:GetParameter" not in by_action
    assert by_action["sqs:SendMessage"] == [f"arn:aws:sqs:*:*:{stage.failure_queue_name}"]
    assert by_action["events:PutEvents"] == [f"arn:aws:events:*:*:event-bus/{stage.event_bus_name}"]
    (push,) = by_action["execute-api:ManageConnections"]
    assert "${WebsocketAPI}/" in push["Fn::Sub"]
    assert by_action["secretsmanager:GetSecretValue"] == [
        f"arn:aws:secretsmanager:*:*:secret:{stage.jwt_secret_id}-??????"]
    assert not any(action.startswith(("kms:", "iam:", "sts:")) for action in by_action)
    assert {a for a in by_action if a.startswith("secretsmanager:")} == {"secretsmanager:GetSecretValue"}
    s3 = {action: resources for action, resources in by_action.items() if action.startswith("s3:")}
    objects = [{"Fn::Sub": "${FilesBucket.Arn}/*"}]
    kept_records = [{"Fn::Sub": "${FilesBucket.Arn}/stream-failures/*"}]
    assert s3 == {"s3:PutObject": objects + kept_records, "s3:PutObjectTagging": objects, "s3:GetObject": objects,
                  "s3:DeleteObject": objects, "s3:ListMultipartUploadParts": objects,
                  "s3:ListBucket": [{"Fn::GetAtt": ["FilesBucket", "Arn"]}]}


# ---- the files' bucket ---------------------------------------------------------

def test_the_files_bucket_is_private_encrypted_and_expires_pending_uploads(template, stage):
    """Exactly these settings, in the template of both paths (make deploy's
    stack holds the same resources: test_both_paths_deploy_...)."""
    (bucket_id,) = resources_of_type(template, "AWS::S3::Bucket")
    bucket = template["Resources"][bucket_id]
    kept = "Retain" if stage.name == "prod" else "Delete"
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == kept
    assert bucket["Properties"] == {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "CorsConfiguration": {"CorsRules": [{"AllowedMethods": ["POST", "GET"], "AllowedOrigins": ["*"],
                                             "AllowedHeaders": ["*"], "ExposedHeaders": ["ETag"], "MaxAge": 3000}]},
        "LifecycleConfiguration": {"Rules": [
            {"Id": "ExpirePendingUploads", "Status": "Enabled",
             "TagFilters": [{"Key": objects.UPLOAD_TAG, "Value": objects.PENDING}], "ExpirationInDays": 1},
            {"Id": "ExpireExports", "Status": "Enabled",
             "TagFilters": [{"Key": objects.UPLOAD_TAG, "Value": objects.EXPORT}], "ExpirationInDays": 7},
            {"Id": "AbortIncompleteMultipartUploads", "Status": "Enabled",
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
            # the stream's failed records (make redrive), as long as the failure queue keeps messages
            {"Id": "ExpireStreamFailures", "Status": "Enabled", "Prefix": "stream-failures/", "ExpirationInDays": 14},
        ]},
    }  # no BucketName (generated: nobody can take it first), no VersioningConfiguration, no AccessControl
    # The service sends a file within 23 hours; S3 expires the pending ones a day after upload at the earliest.
    assert files.ATTACH_WITHIN_SECONDS < 24 * 3600
    (policy,) = resources_of_type(template, "AWS::S3::BucketPolicy").values()
    assert policy["DeletionPolicy"] == kept  # a kept bucket keeps its TLS-only rule
    assert policy["Properties"] == {"Bucket": {"Ref": bucket_id}, "PolicyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": [{"Fn::GetAtt": [bucket_id, "Arn"]}, {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"}],
                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}


def test_the_files_policy_is_the_api_handlers_and_the_streams_only_and_in_place_before_them(template):
    resources = template["Resources"]
    policy = resources[build_template.FILES_ACCESS_POLICY_ID]["Properties"]
    assert policy["PolicyName"] == build_template.FILES_ACCESS_POLICY_NAME
    users = (build_template.API_FUNCTION, build_template.STREAM_FUNCTION)  # the file routes; exports and erasures
    assert policy["Roles"] == [{"Ref": function.role_id} for function in users]
    for function in users:
        assert build_template.FILES_ACCESS_POLICY_ID in resources[function.cfn_id]["DependsOn"]
    others = [s for name, r in resources.items()
              if name not in (build_template.FILES_ACCESS_POLICY_ID, build_template.FAILED_RECORDS_POLICY_ID)
              and r["Type"].startswith("AWS::IAM::") for s in json.dumps(r).split('"') if s.startswith("s3:")]
    assert not others, f"S3 actions outside the files' policy: {others}"
    kept = resources[build_template.FAILED_RECORDS_POLICY_ID]["Properties"]
    assert kept["Roles"] == [{"Ref": build_template.STREAM_FUNCTION.role_id}]
    assert kept["PolicyDocument"]["Statement"] == [{
        "Sid": "StreamFailuresStore", "Effect": "Allow", "Action": ["s3:PutObject"],
        "Resource": {"Fn::Sub": "${FilesBucket.Arn}/stream-failures/*"}}]


# boto3 S3 client calls -> the IAM actions S3 checks for them.
S3_CALLS = {
    "head_object": {"s3:GetObject"},
    # CopyObject reads the source (GetObject), writes the target (PutObject) and, with TaggingDirective
    # REPLACE, sets its tags (PutObjectTagging)
    "copy_object": {"s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"},
    "delete_object": {"s3:DeleteObject"},
    "delete_objects": {"s3:DeleteObject"},
    "list_objects_v2": set(),  # the bucket's s3:ListBucket (FILES_BUCKET_ACTIONS)
    "put_object": {"s3:PutObject", "s3:PutObjectTagging"},  # with Tagging
    "get_object": {"s3:GetObject"},
    "create_multipart_upload": {"s3:PutObject", "s3:PutObjectTagging"},  # with Tagging
    "upload_part": {"s3:PutObject"},
    "list_parts": {"s3:ListMultipartUploadParts"},
    "complete_multipart_upload": {"s3:PutObject"},
    # The POST is authorized as its signer's PutObject, and its `tagging` field as PutObjectTagging.
    "generate_presigned_post": {"s3:PutObject", "s3:PutObjectTagging"},
    "generate_presigned_url": None,  # the operation it signs: its first argument
}
PRESIGNED_OPERATIONS = {"get_object": {"s3:GetObject"}}


def test_the_files_policy_grants_exactly_the_s3_actions_the_code_makes():
    used = set()
    source = ROOT / "chalicelib" / "storage" / "objects.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        if not (isinstance(receiver, ast.Call) and getattr(receiver.func, "id", None) == "client"):
            continue  # client().<operation>(...): every S3 call of the module
        assert node.func.attr in S3_CALLS, f"objects.py:{node.lineno}: teach this test what {node.func.attr} needs"
        actions = S3_CALLS[node.func.attr]
        if actions is None:
            operation = node.args[0].value
            assert operation in PRESIGNED_OPERATIONS, f"objects.py:{node.lineno}: a presigned {operation}"
            actions = PRESIGNED_OPERATIONS[operation]
        used |= actions
    assert used == set(build_template.FILES_OBJECT_ACTIONS)
    # and a HEAD of a missing key must be 404 (an answer), not 403 (an error): ListBucket on the bucket
    assert build_template.FILES_BUCKET_ACTIONS == ("s3:ListBucket",)


def test_the_files_cors_origins_are_a_stage_setting_checked_before_deploying():
    stage = dataclasses.replace(STAGES["prod"], files_cors_origins=("https://app.example.com",
                                                                    "https://*.example.com:8443"))
    rules = build_template.files_bucket(stage)[build_template.FILES_BUCKET_ID]["Properties"]["CorsConfiguration"]
    assert rules["CorsRules"][0]["AllowedOrigins"] == ["https://app.example.com", "https://*.example.com:8443"]
    for wrong in ((), ("https://app.example.com/",), ("app.example.com",), ("https://*.*.example.com",)):
        with pytest.raises(ValueError, match="files_cors_origins"):
            build_template.files_bucket(dataclasses.replace(stage, files_cors_origins=wrong))


# ---- the deployment package --------------------------------------------------

def test_the_deployment_zip_fits_lambda_and_carries_linux_wheels(packaged, stage):
    template, zip_path, _ = packaged[stage.name]
    assert zip_path.stat().st_size < ZIPPED_LIMIT, f"{zip_path.stat().st_size / 2**20:.1f} MiB zipped"
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        assert sum(info.file_size for info in archive.infolist()) < UNZIPPED_LIMIT
        assert "app.py" in names and "chalicelib/stream/handler.py" in names
        development = [name for name in names if name.startswith(("devtools/", "tests/", "bench/"))]
        assert not development, f"development tools in the zip: {development[:5]}"
        wheel = next(name for name in names if name.startswith("pydantic_core-") and name.endswith("/WHEEL"))
        tags = [line.split(":", 1)[1].strip() for line in archive.read(wheel).decode().splitlines()
                if line.startswith("Tag:")]
    runtimes = {f["Properties"]["Runtime"] for f in resources_of_type(template, "AWS::Serverless::Function").values()}
    (runtime,) = runtimes
    cpython = "cp" + runtime.removeprefix("python").replace(".", "")
    assert any(tag.startswith(f"{cpython}-") and "manylinux" in tag and tag.endswith("_x86_64") for tag in tags), tags


# ---- policy as code: checkov ---------------------------------------------------------

CHECKOV = ROOT / "build" / "checkov" / "bin" / "checkov"  # its own venv (make test; requirements-checkov.txt)


def test_checkov_passes_on_both_paths_templates_every_skip_explained(packaged, tmp_path):
    """One run over make deploy's stacks and make package's merged templates,
    offline (--skip-download, every proxy a closed port): no failed check, and
    each check skipped says why (infra/build_template.py, ACCEPTED_CHECKS)."""
    assert CHECKOV.exists(), "checkov is installed by `make test` into build/checkov (requirements-checkov.txt)"
    files = [ROOT / "infra" / f"stack-{name}.json" for name in STAGES]
    for name, (template, _, _) in packaged.items():
        files.append(tmp_path / f"sam-{name}.json")
        files[-1].write_text(json.dumps(template))
    env = {**os.environ, "HTTP_PROXY": package.CLOSED_PORT, "HTTPS_PROXY": package.CLOSED_PORT,
           "http_proxy": package.CLOSED_PORT, "https_proxy": package.CLOSED_PORT, "NO_PROXY": "", "no_proxy": ""}
    result = subprocess.run([str(CHECKOV), "--compact", "-o", "json", "--skip-download", "--framework",
                             "cloudformation", *(arg for path in files for arg in ("-f", str(path)))],
                            capture_output=True, text=True, env=env, timeout=600)
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = [r for r in reports if r["check_type"] == "cloudformation"]
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["resource_count"] > 0
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
    assert not failed, failed
    skipped = report["results"]["skipped_checks"]
    assert all(c["check_result"]["suppress_comment"] == build_template.ACCEPTED_CHECKS[c["check_id"]]
               for c in skipped)
    assert {c["check_id"] for c in skipped} == set(build_template.ACCEPTED_CHECKS), "a reason nothing needs"
