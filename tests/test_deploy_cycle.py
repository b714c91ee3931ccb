"""`make deploy` and `make undeploy`, the whole cycle, offline: infra/deploy.py
(the stage's stack, `chalice deploy`, what Chalice cannot set) against a moto
server on loopback, every AWS call of it and of Chalice through
AWS_ENDPOINT_URL, pip on the wheelhouse, any other address a closed port.

The cycle, run once for the module (`cycle`), each step's outcome checked with
boto3 by the tests below:

1. deploy dev, deploy prod (both in one account, as they may be);
2. plain `chalice deploy --stage dev`, as Chalice users redeploy;
3. the state file lost: make deploy refuses; put back, and the table replaced
   (a new stream): make deploy refuses; both at once with REPAIR=1: repaired;
4. undeploy dev and prod, each with files in its bucket: nothing left but the
   prod table and the prod bucket with their data (and the secret parameters
   the test made, as a user makes them); the dev bucket emptied, then deleted.

Then three refusals that stop before anything is made, against in-process moto.

moto 5.2.5 lacks a few things this needs; `moto_shims` adds them, in this
process only, for this module only (the moto server runs in a thread here).

The files' bucket: moto's CloudFormation applies its BucketEncryption (checked
here with GetBucketEncryption) and ignores PublicAccessBlockConfiguration,
OwnershipControls, CorsConfiguration and LifecycleConfiguration, and the
AWS::S3::BucketPolicy resource altogether (a warning). A shim could only apply
what the template says and read it back, so those are checked in the template
(tests/test_deploy.py: exact settings, cfn-lint), not here. What this cycle
checks of the bucket: the stack makes it, every function is given its name, the
API handler's role alone may use it and names it only, undeploy empties and
deletes the dev bucket and keeps the prod one with its files. moto's own
CloudFormation would delete a bucket with objects without a word (AWS refuses):
the emptiness is checked before the deletion.
The cycle takes about a minute of CPU: four chalice deploys, each uploading a
20 MB zip to five functions."""

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

import app as chat_app
from chalicelib.storage.table import create_table, table_definition
from chalicelib.stream.handler import stream_filters
from devtools import gateway
from infra import build_template, deploy, monitoring
from infra.build_template import API_FUNCTION, FUNCTIONS, STAGES, STREAM_FUNCTION
from infra.package import CLOSED_PORT

# moto skips the bucket's AWS::S3::BucketPolicy with this warning (module docstring).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..S3..BucketPolicy:UserWarning")  # (. for :)

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
CUSTOMER = "5e4a0680-804e-11ec-8477-2fea5968d85b"  # keys are {customer_id}/{file_id}
ALERT_EMAIL = "oncall@example.com"


# ---- moto shims ----------------------------------------------------------------

@contextlib.contextmanager
def moto_shims():
    """What moto 5.2.5 lacks and AWS does, for this cycle:

    1. API Gateway imports the Swagger 2.0 document Chalice sends
       (ImportRestApi, PutRestApi); moto takes only OpenAPI 3 and wants
       info.description. The paths and their x-amazon-apigateway-integration
       are the same in both, so relabel the version.
    2. apigatewayv2 CreateDeployment (Chalice deploys a new websocket API);
       moto has no route for it. Answer with a deployment id.
    3. A CloudFormation table's PointInTimeRecoverySpecification and
       TimeToLiveSpecification: moto ignores them. Apply them as the APIs would.
    4. Lambda's LoggingConfig: moto neither keeps nor returns it. Keep it, and
       return it, so that a Chalice update that does not send it leaves it.
    5. moto runs a function (in Docker) when its stream mapping has a record;
       there is no Docker here, and the test writes to a table with a mapping.
    6. apigatewayv2 UpdateStage (make deploy throttles the websocket stage);
       moto has no route for it. Keep DefaultRouteSettings, as GetStage returns it.
    7. A REST API's CreateDeployment to an existing stage (every chalice
       deploy): AWS points the stage at the new deployment and keeps its
       settings; moto makes a new stage, without its throttling and tracing.
       Keep them, as AWS does.
    """
    from moto.apigateway.models import APIGatewayBackend, RestAPI
    from moto.apigatewayv2 import urls as apigatewayv2_urls
    from moto.apigatewayv2.responses import ApiGatewayV2Response
    from moto.awslambda.models import LambdaFunction
    from moto.core.config import default_user_config
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.table import Table

    put_rest_api, import_rest_api = APIGatewayBackend.put_rest_api, APIGatewayBackend.import_rest_api
    rest_api_deployment = RestAPI.create_deployment
    create_table = Table.create_from_cloudformation_json
    update_configuration, get_configuration = LambdaFunction.update_configuration, LambdaFunction.get_configuration

    def put_swagger(self, function_id, api_doc, fail_on_warnings, mode="merge"):
        if "swagger" in api_doc:
            api_doc = {"openapi": "3.0.1", **{k: v for k, v in api_doc.items() if k != "swagger"}}
        return put_rest_api(self, function_id, api_doc, fail_on_warnings, mode)

    def import_swagger(self, api_doc, fail_on_warnings):
        return import_rest_api(self, {**api_doc, "info": {"description": "", **api_doc["info"]}}, fail_on_warnings)

    def create_deployment(self):
        return 201, {}, json.dumps({"deploymentId": "shimdeployment", "deploymentStatus": "DEPLOYED"})

    def deployment_keeping_the_stage(self, name, description, stage_variables=None):
        before = self.stages.get(name)
        deployment = rest_api_deployment(self, name, description, stage_variables)
        if before is not None:
            self.stages[name].method_settings = before.method_settings
            self.stages[name].tracing_enabled = before.tracing_enabled
        return deployment

    def update_stage(self):
        from urllib.parse import unquote

        parts = self.path.split("/")
        stage = self.apigatewayv2_backend.get_stage(parts[-3], unquote(parts[-1]))
        stage.default_route_settings = json.loads(self.body).get("defaultRouteSettings", stage.default_route_settings)
        return 200, {}, json.dumps(stage.to_json())

    def table_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        table = create_table(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties, backend = cloudformation_json["Properties"], dynamodb_backends[account_id][region_name]
        if "TimeToLiveSpecification" in properties:
            backend.update_time_to_live(table.name, properties["TimeToLiveSpecification"])
        if "PointInTimeRecoverySpecification" in properties:
            backend.update_continuous_backups(table.name, properties["PointInTimeRecoverySpecification"])
        return table

    def update_with_logging(self, updates):
        if "LoggingConfig" in updates:
            self.shim_logging_config = updates["LoggingConfig"]
        return update_configuration(self, updates)

    def get_with_logging(self, on_create=False):
        configuration = get_configuration(self, on_create)
        if getattr(self, "shim_logging_config", None):
            configuration["LoggingConfig"] = self.shim_logging_config
        return configuration

    deployments = "{0}/v2/apis/(?P<api_id>[^/]+)/deployments$"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(APIGatewayBackend, "put_rest_api", put_swagger)
        patch.setattr(APIGatewayBackend, "import_rest_api", import_swagger)
        patch.setitem(apigatewayv2_urls.url_paths, deployments, ApiGatewayV2Response.dispatch)
        patch.setattr(ApiGatewayV2Response, "create_deployment", create_deployment, raising=False)
        patch.setattr(ApiGatewayV2Response, "update_stage", update_stage, raising=False)
        patch.setattr(RestAPI, "create_deployment", deployment_keeping_the_stage)
        patch.setattr(Table, "create_from_cloudformation_json", classmethod(table_from_cloudformation))
        patch.setattr(LambdaFunction, "update_configuration", update_with_logging)
        patch.setattr(LambdaFunction, "get_configuration", get_with_logging)
        patch.setitem(default_user_config["lambda"], "use_docker", False)
        yield


# ---- the account, the project, the commands --------------------------------

@pytest.fixture(scope="module")
def endpoint():
    import logging

    quiet = logging.getLogger("werkzeug")  # moto's server logs every request
    level, quiet.level = quiet.level, logging.WARNING
    with moto_shims():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        reset = functools.partial(urllib.request.urlopen, urllib.request.Request(f"{url}/moto-api/reset",
                                                                                 method="POST"), timeout=10)
        reset()  # moto's backends are this process's: start from an empty account, whatever ran before
        try:
            yield url
        finally:
            reset()
            server.stop()
            quiet.setLevel(level)


class Aws:
    def __init__(self, endpoint):
        self._session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                              region_name=REGION)
        self._endpoint = endpoint

    def __getattr__(self, service):
        return self._session.client(service.rstrip("_"), endpoint_url=self._endpoint)


def environment(endpoint):
    """The deploying shell: dummy credentials, every AWS call to the moto
    server, and nothing else reachable (pip has the wheelhouse)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHAT_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        HTTP_PROXY=CLOSED_PORT, HTTPS_PROXY=CLOSED_PORT, http_proxy=CLOSED_PORT, https_proxy=CLOSED_PORT,
        NO_PROXY="127.0.0.1", no_proxy="127.0.0.1",
    )
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the Chalice project as committed: make deploy writes its
    .chalice/config.json and Chalice its .chalice/deployed/."""
    copy = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "app.py", copy)
    shutil.copy(ROOT / "requirements.txt", copy)
    shutil.copytree(ROOT / "chalicelib", copy / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".chalice").mkdir()
    for config in (ROOT / ".chalice").glob("*.json"):
        shutil.copy(config, copy / ".chalice")
    return copy


def run(command, env, timeout=300):
    return subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True, timeout=timeout)


def make(env, project, command, stage, *flags):
    """What `make deploy|undeploy STAGE=... [REPAIR=1]` runs."""
    return run([sys.executable, ROOT / "infra" / "deploy.py", command, "--stage", stage,
                "--project-dir", project, *flags], env)


def ok(result):
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


def state(project, stage):
    path = project / ".chalice" / "deployed" / f"{stage}.json"
    return json.loads(path.read_text()) if path.exists() else None


def state_ids(project, stage):
    """resource type -> the ids the state file names."""
    keys = {"rest_api": "rest_api_id", "websocket_api": "websocket_api_id", "dynamodb_event": "event_uuid"}
    out = {}
    for record in (state(project, stage) or {}).get("resources", []):
        if record["resource_type"] in keys:
            out.setdefault(record["resource_type"], []).append(record[keys[record["resource_type"]]])
    return out


def snapshot(aws, project, stage_name):
    """Everything of one stage that exists, described with boto3."""
    stage = STAGES[stage_name]
    shot = {"state": state(project, stage_name), "state_ids": state_ids(project, stage_name),
            "config_env": json.loads((project / ".chalice" / "config.json").read_text())["stages"][stage_name]
            .get("environment_variables", {})}
    functions = {f["FunctionName"]: f for f in aws.lambda_.list_functions()["Functions"]}
    shot["functions"] = {f.name(stage): functions[f.name(stage)] for f in FUNCTIONS if f.name(stage) in functions}
    shot["function_policies"] = {}
    for name in shot["functions"]:
        with contextlib.suppress(aws.lambda_.exceptions.ResourceNotFoundException):
            shot["function_policies"][name] = json.loads(aws.lambda_.get_policy(FunctionName=name)["Policy"])
    shot["mappings"] = [m for m in aws.lambda_.list_event_source_mappings()["EventSourceMappings"]
                        if m["FunctionArn"].endswith(f":function:{STREAM_FUNCTION.name(stage)}")]
    shot["rest_apis"] = {}
    for api in aws.apigateway.get_rest_apis()["items"]:
        resources = aws.apigateway.get_resources(restApiId=api["id"])["items"]
        integrations = {}
        for resource in resources:
            for method in resource.get("resourceMethods", {}):
                integration = aws.apigateway.get_integration(restApiId=api["id"], resourceId=resource["id"],
                                                             httpMethod=method)
                integrations[(resource["path"], method)] = integration.get("uri", "")
        if any(f":function:{API_FUNCTION.name(stage)}/" in uri for uri in integrations.values()):
            stages = [s["stageName"] for s in aws.apigateway.get_stages(restApiId=api["id"])["item"]]
            settings = aws.apigateway.get_stage(restApiId=api["id"], stageName="api")
            shot.setdefault("gateway_responses", {})[api["id"]] = {
                response["responseType"]: response
                for response in aws.apigateway.get_gateway_responses(restApiId=api["id"])["items"]}
            shot["rest_apis"][api["id"]] = {"name": api["name"], "integrations": integrations, "stages": stages,
                                            "stage": {key: settings.get(key)
                                                      for key in ("tracingEnabled", "methodSettings")}}
    shot["websocket_apis"] = {}
    for api in aws.apigatewayv2.get_apis()["Items"]:
        if api["Name"] == stage.websocket_api_name:
            integrations = {i["IntegrationId"]: i
                            for i in aws.apigatewayv2.get_integrations(ApiId=api["ApiId"])["Items"]}
            routes = {r["RouteKey"]: integrations[r["Target"].removeprefix("integrations/")]["IntegrationUri"]
                      for r in aws.apigatewayv2.get_routes(ApiId=api["ApiId"])["Items"]}
            stages = [s["StageName"] for s in aws.apigatewayv2.get_stages(ApiId=api["ApiId"])["Items"]]
            shot["websocket_apis"][api["ApiId"]] = {
                "protocol": api["ProtocolType"], "routes": routes, "stages": stages,
                "route_settings": aws.apigatewayv2.get_stage(ApiId=api["ApiId"], StageName="api").get(
                    "DefaultRouteSettings")}
    shot["roles"] = {}
    for role in aws.iam.list_roles()["Roles"]:
        if role["RoleName"].startswith(f"{build_template.APP_NAME}-{stage_name}-"):
            name = role["RoleName"]
            inline = {p: aws.iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                      for p in aws.iam.list_role_policies(RoleName=name)["PolicyNames"]}
            attached = aws.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            shot["roles"][name] = {"arn": role["Arn"], "trust": role["AssumeRolePolicyDocument"],
                                   "inline": inline, "attached": attached}
    tables = aws.dynamodb.list_tables()["TableNames"]
    if stage.table_name in tables:
        shot["table"] = aws.dynamodb.describe_table(TableName=stage.table_name)["Table"]
        shot["pitr"] = aws.dynamodb.describe_continuous_backups(TableName=stage.table_name)[
            "ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        shot["ttl"] = aws.dynamodb.describe_time_to_live(TableName=stage.table_name)["TimeToLiveDescription"]
        shot["items"] = aws.dynamodb.scan(TableName=stage.table_name)["Items"]
    stacks = [s for s in aws.cloudformation.list_stacks()["StackSummaries"]
              if s["StackStatus"] != "DELETE_COMPLETE" and s["StackName"].startswith(f"voipbin-chat-{stage_name}")]
    shot["stacks"] = {s["StackName"]: s["StackStatus"] for s in stacks}
    shot["buckets"] = {}
    for bucket in aws.s3.list_buckets()["Buckets"]:  # CloudFormation names it <stack>-<logical id>-<random>
        name = bucket["Name"]
        if name.startswith(f"{stage.stack_name}-{build_template.FILES_BUCKET_ID.lower()}-"):
            shot["buckets"][name] = {
                "encryption": aws.s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"],
                "keys": [o["Key"] for o in aws.s3.list_objects_v2(Bucket=name).get("Contents", [])],
            }
    shot["queues"] = [url for url in aws.sqs.list_queues().get("QueueUrls", []) if stage.failure_queue_name in url]
    shot["buses"] = [b["Name"] for b in aws.events.list_event_buses()["EventBuses"]
                     if b["Name"] == stage.event_bus_name]
    shot["log_groups"] = {g["logGroupName"]: g.get("retentionInDays") for g in aws.logs.describe_log_groups()[
        "logGroups"] if g["logGroupName"].startswith(f"/aws/lambda/voipbin-chat-{stage_name}")}
    shot["concurrency"] = {name: aws.lambda_.get_function_concurrency(FunctionName=name).get(
        "ReservedConcurrentExecutions") for name in shot["functions"]}
    shot["alarms"] = {a["AlarmName"]: a for a in aws.cloudwatch.describe_alarms(
        AlarmNamePrefix=f"{stage.rest_api_name}-")["MetricAlarms"]}
    shot["dashboards"] = {d["DashboardName"]: aws.cloudwatch.get_dashboard(DashboardName=d["DashboardName"])[
        "DashboardBody"] for d in aws.cloudwatch.list_dashboards(DashboardNamePrefix=stage.dashboard_name)[
        "DashboardEntries"] if d["DashboardName"] == stage.dashboard_name}
    shot["topics"] = {t["TopicArn"]: [(s["Protocol"], s["Endpoint"]) for s in aws.sns.list_subscriptions_by_topic(
        TopicArn=t["TopicArn"])["Subscriptions"]] for t in aws.sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(f":{stage.alarm_topic_name}")}
    return shot


@pytest.fixture(scope="module")
def cycle(endpoint, project):
    """Runs the whole cycle once; what each step did and left, by step."""
    aws, env = Aws(endpoint), environment(endpoint)
    out = {}
    for stage in STAGES.values():  # README, step 1: the secret, made by the user
        aws.ssm.put_parameter(Name=stage.jwt_secret_parameter, Type="SecureString", Value=f"secret-of-{stage.name}")

    for name in ("dev", "prod"):  # prod with an address for its alarms (make deploy ALERT_EMAIL=...)
        stage_env = {**env, "ALERT_EMAIL": ALERT_EMAIL} if name == "prod" else env
        out[f"deploy {name}"] = ok(make(stage_env, project, "deploy", name))
        out[f"first {name}"] = snapshot(aws, project, name)

    chalice_env = {**env, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(ROOT / "build" / "wheelhouse"),
                   "PIP_CONFIG_FILE": os.devnull}
    out["plain chalice deploy"] = ok(run([Path(sys.executable).parent / "chalice", "--project-dir", project,
                                          "deploy", "--stage", "dev"], chalice_env))
    out["again dev"] = snapshot(aws, project, "dev")

    state_file = project / ".chalice" / "deployed" / "dev.json"
    kept = state_file.read_text()
    state_file.unlink()
    out["lost state"] = make(env, project, "deploy", "dev")
    out["after lost state"] = snapshot(aws, project, "dev")
    state_file.write_text(kept)
    # Someone replaces the dev table (same name, so the stack does not notice): a new stream.
    aws.dynamodb.delete_table(TableName=STAGES["dev"].table_name)
    out["new stream"] = create_table(aws.dynamodb, STAGES["dev"].table_name)
    out["stream changed"] = make(env, project, "deploy", "dev")
    out["after stream changed"] = snapshot(aws, project, "dev")
    state_file.unlink()
    out["repair"] = ok(make(env, project, "deploy", "dev", "--repair"))
    out["repaired"] = snapshot(aws, project, "dev")

    aws.dynamodb.put_item(TableName=STAGES["prod"].table_name, Item={"pk": {"S": "kept"}, "sk": {"S": "kept"}})
    for name in ("dev", "prod"):  # files in both buckets: an attached one, a pending one, an unfinished upload
        (bucket_name,) = out[f"first {name}"]["buckets"]
        aws.s3.put_object(Bucket=bucket_name, Key=f"{CUSTOMER}/attached", Body=b"kept", Tagging="upload=attached")
        aws.s3.put_object(Bucket=bucket_name, Key=f"{CUSTOMER}/pending", Body=b"kept", Tagging="upload=pending")
        aws.s3.create_multipart_upload(Bucket=bucket_name, Key=f"{CUSTOMER}/multipart")
    for name in ("dev", "prod"):
        out[f"undeploy {name}"] = ok(make(env, project, "undeploy", name))
        out[f"gone {name}"] = snapshot(aws, project, name)
    out["account"] = {
        "functions": aws.lambda_.list_functions()["Functions"],
        "mappings": aws.lambda_.list_event_source_mappings()["EventSourceMappings"],
        "roles": aws.iam.list_roles()["Roles"],
        "rest_apis": aws.apigateway.get_rest_apis()["items"],
        "websocket_apis": aws.apigatewayv2.get_apis()["Items"],
        "stacks": [s for s in aws.cloudformation.list_stacks()["StackSummaries"]
                   if s["StackStatus"] != "DELETE_COMPLETE"],
        "tables": aws.dynamodb.list_tables()["TableNames"],
        "queues": aws.sqs.list_queues().get("QueueUrls", []),
        "buckets": [b["Name"] for b in aws.s3.list_buckets()["Buckets"]],
        "buses": [b["Name"] for b in aws.events.list_event_buses()["EventBuses"]],
        "log_groups": aws.logs.describe_log_groups()["logGroups"],
        "parameters": [p["Name"] for p in aws.ssm.describe_parameters()["Parameters"]],
        "alarms": aws.cloudwatch.describe_alarms()["MetricAlarms"],
        "dashboards": aws.cloudwatch.list_dashboards()["DashboardEntries"],
        "topics": aws.sns.list_topics()["Topics"],
    }
    return out


@pytest.fixture(params=sorted(STAGES))
def stage(request):
    return STAGES[request.param]


@pytest.fixture
def first(cycle, stage):
    return cycle[f"first {stage.name}"]


def one(mapping):
    assert len(mapping) == 1, mapping
    return next(iter(mapping.values())) if isinstance(mapping, dict) else mapping[0]


# ---- the first deploy of each stage ----------------------------------------

def test_the_stack_makes_the_table_as_the_code_defines_it(first, stage):
    assert first["stacks"] == {stage.stack_name: "CREATE_COMPLETE"}
    table = first["table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    wanted = {index["IndexName"] for index in table_definition("x")["GlobalSecondaryIndexes"]}
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == wanted
    assert wanted == {"list_index", "relation_index", "order_index"}
    assert first["pitr"] == "ENABLED"
    assert first["ttl"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert table["DeletionProtectionEnabled"] is stage.deletion_protection


def test_the_stack_makes_the_files_bucket_encrypted(first, stage):
    (name,) = first["buckets"]
    assert name.startswith(f"{stage.stack_name}-filesbucket-")  # generated by CloudFormation
    assert first["buckets"][name]["encryption"] == {"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]}
    # its other settings: moto's CloudFormation ignores them (module docstring); tests/test_deploy.py checks them


def test_the_stack_makes_the_bus_the_queue_and_the_log_groups_with_retention(first, stage):
    assert first["buses"] == [stage.event_bus_name]
    assert len(first["queues"]) == 1
    assert first["log_groups"] == {f"/aws/lambda/{f.name(stage)}": stage.log_retention_days for f in FUNCTIONS}


def test_every_function_has_the_stage_environment_and_settings(first, stage):
    assert set(first["functions"]) == {f.name(stage) for f in FUNCTIONS}
    (websocket_id,) = first["websocket_apis"]
    (bucket,) = first["buckets"]
    expected = {
        "CHAT_TABLE_NAME": stage.table_name,
        "CHAT_STREAM_ARN": first["table"]["LatestStreamArn"],
        "CHAT_EVENT_BUS": stage.event_bus_name,
        "CHAT_FILES_BUCKET": bucket,
        "CHAT_JWT_SECRET_PARAMETER": stage.jwt_secret_parameter,
        "CHAT_CORS_ORIGINS": ",".join(stage.files_cors_origins),  # the API's CORS (chalicelib/api/cors.py)
        "CHAT_STAGE": stage.name,
        "CHAT_WEBSOCKET_ENDPOINT": f"https://{websocket_id}.execute-api.{REGION}.amazonaws.com/api",
    }
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage.name]
    for function in FUNCTIONS:
        configuration = first["functions"][function.name(stage)]
        assert configuration["Environment"]["Variables"] == expected, function.name(stage)
        assert configuration["Role"] == first["roles"][function.role_name(stage)]["arn"]
        assert configuration["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"
        assert configuration["MemorySize"] == config["lambda_memory_size"]
        timeout = config["lambda_functions"].get(function.resource_name, {}).get("lambda_timeout")
        assert configuration["Timeout"] == (timeout or config["lambda_timeout"])
        assert configuration["LoggingConfig"] == {
            "LogFormat": "JSON", "ApplicationLogLevel": stage.log_level, "SystemLogLevel": "WARN",
            "LogGroup": f"/aws/lambda/{function.name(stage)}"}
    # and .chalice/config.json holds it, for plain `chalice deploy`
    assert first["config_env"] == expected


def test_the_stream_mapping_reads_the_table_stream_and_reports_failures(first, stage):
    mapping = one(first["mappings"])
    assert first["state_ids"]["dynamodb_event"] == [mapping["UUID"]]
    assert mapping["EventSourceArn"] == first["table"]["LatestStreamArn"]
    assert mapping["BatchSize"] == 100 and mapping["StartingPosition"] == "LATEST"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == stage.max_retry_attempts
    assert mapping["MaximumRecordAgeInSeconds"] == stage.max_record_age_seconds
    assert mapping["ParallelizationFactor"] == stage.parallelization_factor == 10
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{stage.failure_queue_name}"
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
    assert mapping["FilterCriteria"] == {"Filters": stream_filters()}  # within Lambda's limits: test_aws_limits


def test_the_rest_api_routes_every_route_of_the_app_to_the_api_handler(first, stage):
    (api_id,) = first["rest_apis"]
    assert first["state_ids"]["rest_api"] == [api_id]
    api = first["rest_apis"][api_id]
    assert api["name"] == stage.rest_api_name and api["stages"] == ["api"]  # the stages' metrics told apart
    handler_arn = first["functions"][API_FUNCTION.name(stage)]["FunctionArn"]
    for path, methods in chat_app.app.routes.items():
        for method in methods:
            uri = api["integrations"][(path, method)]
            assert f"functions/{handler_arn}/invocations" in uri, (path, method)
    policy = first["function_policies"][API_FUNCTION.name(stage)]
    assert any(f":{api_id}/" in json.dumps(s.get("Condition")) for s in policy["Statement"])


def test_the_websocket_api_routes_connect_message_and_disconnect(first, stage):
    (api_id,) = first["websocket_apis"]
    assert first["state_ids"]["websocket_api"] == [api_id]
    api = first["websocket_apis"][api_id]
    assert api["protocol"] == "WEBSOCKET" and api["stages"] == ["api"]
    by_route = {"$connect": "websocket_connect", "$default": "websocket_message", "$disconnect": "websocket_disconnect"}
    assert set(api["routes"]) == set(by_route)
    for route, resource_name in by_route.items():
        function = f"{build_template.APP_NAME}-{stage.name}-{resource_name}"
        assert first["functions"][function]["FunctionArn"] in api["routes"][route], route
        policy = first["function_policies"][function]
        assert any(f":{api_id}/" in json.dumps(s.get("Condition")) for s in policy["Statement"]), route


def test_every_role_has_the_policy_file_only_pushers_may_push_only_the_api_and_the_stream_may_use_the_bucket(
        first, stage):
    policy_file = json.loads((ROOT / ".chalice" / f"policy-{stage.name}.json").read_text())
    (websocket_id,) = first["websocket_apis"]
    push = build_template.push_policy_document(
        f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{websocket_id}/api/POST/@connections/*")
    (bucket,) = first["buckets"]
    files = {"Version": "2012-10-17", "Statement": [
        {"Sid": "FilesObjects", "Effect": "Allow", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Action": ["s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject",
                    "s3:PutObjectTagging"]},
        {"Sid": "FilesBucketList", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": f"arn:aws:s3:::{bucket}"},
    ]}
    assert set(first["roles"]) == {f.role_name(stage) for f in FUNCTIONS}
    for function in FUNCTIONS:
        role = first["roles"][function.role_name(stage)]
        assert role["trust"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert role["attached"] == []
        expected = {function.role_name(stage): policy_file}
        if function.cfn_id in build_template.PUSHING_FUNCTION_IDS:
            expected[build_template.PUSH_POLICY_NAME] = push
        if function in (API_FUNCTION, STREAM_FUNCTION):  # the file routes; exports and erasures
            expected[build_template.FILES_ACCESS_POLICY_NAME] = files
        if function is STREAM_FUNCTION:
            expected[build_template.FAILED_RECORDS_POLICY_NAME] = build_template.failed_records_policy_document(
                f"arn:aws:s3:::{bucket}")
        assert role["inline"] == expected, function.role_name(stage)
        for document in role["inline"].values():
            for statement in document["Statement"]:
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [
                    statement["Resource"]]
                if statement.get("Sid") == "XRayTraces":  # X-Ray's write actions have no resource to name
                    assert statement["Action"] == list(build_template.XRAY_ACTIONS) and resources == ["*"]
                    continue
                assert "*" not in resources and all(r.split(":")[5:] != ["*"] for r in resources), statement


def test_the_state_file_names_everything_chalice_made(first, stage):
    names = {r["name"] for r in first["state"]["resources"]}
    assert names == ({f.resource_name for f in FUNCTIONS} | {f"{f.resource_name}_role" for f in FUNCTIONS}
                     | {"rest_api", "websocket_api", deploy.STREAM_MAPPING})


# ---- deploying again ---------------------------------------------------------

def test_a_plain_chalice_deploy_again_makes_nothing_twice_and_keeps_every_setting(cycle):
    first, again = cycle["first dev"], cycle["again dev"]
    assert "Updating lambda function" in cycle["plain chalice deploy"].stdout
    for key in ("rest_apis", "websocket_apis", "state_ids", "roles", "config_env", "stacks", "log_groups"):
        assert again[key] == first[key], key
    def settings(mappings):
        return [{k: v for k, v in m.items() if k != "LastModified"} for m in mappings]

    assert settings(again["mappings"]) == settings(first["mappings"])  # failure handling kept
    for name, configuration in again["functions"].items():
        for key in ("Environment", "LoggingConfig", "Role", "MemorySize", "Timeout"):
            assert configuration[key] == first["functions"][name][key], (name, key)


def test_a_lost_state_file_stops_the_deploy_before_it_changes_anything(cycle):
    result, before, after = cycle["lost state"], cycle["again dev"], cycle["after lost state"]
    assert result.returncode == 1
    assert ".chalice/deployed/dev.json" in result.stderr and "REPAIR=1" in result.stderr
    assert "second one" in result.stderr
    assert after["state"] is None
    for key in ("rest_apis", "websocket_apis", "mappings", "functions", "stacks"):
        assert after[key] == before[key], key


def test_a_replaced_stream_stops_the_deploy_naming_both_streams(cycle):
    result, after = cycle["stream changed"], cycle["after stream changed"]
    old = one(cycle["again dev"]["mappings"])["EventSourceArn"]
    assert result.returncode == 1
    assert old in result.stderr and cycle["new stream"] in result.stderr
    assert one(after["mappings"])["EventSourceArn"] == old  # untouched
    assert after["config_env"]["CHAT_STREAM_ARN"] == old  # config.json does not name the new stream yet


def test_repair_rebuilds_the_state_file_and_subscribes_the_new_stream(cycle):
    before, repaired = cycle["again dev"], cycle["repaired"]
    assert "repairing" in cycle["repair"].stdout
    mapping = one(repaired["mappings"])
    assert mapping["EventSourceArn"] == cycle["new stream"] == repaired["config_env"]["CHAT_STREAM_ARN"]
    assert mapping["UUID"] != one(before["mappings"])["UUID"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and mapping["DestinationConfig"]
    assert repaired["state_ids"] == {**before["state_ids"], "dynamodb_event": [mapping["UUID"]]}
    assert repaired["rest_apis"].keys() == before["rest_apis"].keys()
    assert repaired["websocket_apis"].keys() == before["websocket_apis"].keys()
    for configuration in repaired["functions"].values():
        assert configuration["Environment"]["Variables"]["CHAT_STREAM_ARN"] == cycle["new stream"]


# ---- undeploy ----------------------------------------------------------------

def test_undeploy_leaves_only_the_prod_table_and_bucket_with_their_data(cycle):
    account = cycle["account"]
    for key in ("functions", "mappings", "roles", "rest_apis", "websocket_apis", "stacks", "queues", "log_groups",
                "alarms", "dashboards", "topics"):
        assert account[key] == [], key
    assert account["buses"] == ["default"]
    prod = STAGES["prod"]
    assert account["tables"] == [prod.table_name]
    gone = cycle["gone prod"]
    assert gone["items"] == [{"pk": {"S": "kept"}, "sk": {"S": "kept"}}]
    assert gone["table"]["DeletionProtectionEnabled"] is True
    assert "kept: table voipbin-chat-prod" in cycle["undeploy prod"].stdout
    # the dev bucket emptied, then deleted with its stack; the prod bucket kept with its files
    (dev_bucket,) = cycle["first dev"]["buckets"]
    (prod_bucket,) = cycle["first prod"]["buckets"]
    assert f"emptying bucket {dev_bucket}: 2 objects deleted" in cycle["undeploy dev"].stdout
    assert account["buckets"] == [prod_bucket] and not cycle["gone dev"]["buckets"]
    assert sorted(gone["buckets"][prod_bucket]["keys"]) == [f"{CUSTOMER}/attached", f"{CUSTOMER}/pending"]
    assert gone["buckets"][prod_bucket]["encryption"] == cycle["first prod"]["buckets"][prod_bucket]["encryption"]
    assert f"kept: bucket {prod_bucket}" in cycle["undeploy prod"].stdout
    # the secret parameters are the user's: undeploy never touches them
    assert sorted(account["parameters"]) == sorted(s.jwt_secret_parameter for s in STAGES.values())


def test_undeploy_leaves_no_state_file_and_no_account_values_in_the_config(cycle, stage):
    gone = cycle[f"gone {stage.name}"]
    assert gone["state"] is None
    committed = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage.name]
    assert gone["config_env"] == committed["environment_variables"]


# ---- what make deploy refuses before it makes anything ---------------------------

@pytest.fixture
def offline_account():
    """An in-process moto account (no server) for the refusals: they stop before Chalice runs."""
    from moto import mock_aws

    with mock_aws():
        yield Aws(None)


def refusal(project, stage_name):
    with pytest.raises(deploy.DeployError) as raised:
        deploy.deploy(deploy.Project(project, STAGES[stage_name]))
    return str(raised.value)


def test_make_deploy_without_the_secret_says_how_to_make_it(offline_account, project):
    message = refusal(project, "dev")
    assert "aws ssm put-parameter --name /voipbin-chat/dev/jwt-secret --type SecureString" in message
    assert offline_account.cloudformation.list_stacks()["StackSummaries"] == []


def test_make_deploy_refuses_a_stage_deployed_with_make_package(offline_account, project):
    stage = STAGES["dev"]
    offline_account.ssm.put_parameter(Name=stage.jwt_secret_parameter, Type="SecureString", Value="s")
    offline_account.cloudformation.create_stack(StackName=stage.package_stack_name, TemplateBody=json.dumps(
        {"Resources": {"Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "other"}}}}))
    assert "make package" in refusal(project, "dev")
    assert stage.stack_name not in [s["StackName"] for s in offline_account.cloudformation.list_stacks()[
        "StackSummaries"]]


def test_make_deploy_refuses_a_kept_prod_table_without_its_stack(offline_account, project):
    stage = STAGES["prod"]
    offline_account.ssm.put_parameter(Name=stage.jwt_secret_parameter, Type="SecureString", Value="s")
    create_table(offline_account.dynamodb, stage.table_name)
    message = refusal(project, "prod")
    assert f"table {stage.table_name} exists outside any stack" in message and "Delete the table" in message
    assert offline_account.cloudformation.list_stacks()["StackSummaries"] == []


# ---- what watches each stage (README, Operating it) -------------------------------

def test_the_alarms_watch_the_stage_and_notify_its_topic(first, stage):
    (topic,) = first["topics"]
    (websocket_id,) = first["websocket_apis"]
    wanted = monitoring.alarm_properties(stage, build_template.monitored_functions(stage),
                                         STREAM_FUNCTION.name(stage), websocket_id, topic)
    assert set(first["alarms"]) == {alarm["AlarmName"] for alarm in wanted}
    for alarm in wanted:
        made = first["alarms"][alarm["AlarmName"]]
        assert made["AlarmActions"] == made["OKActions"] == [topic], alarm["AlarmName"]
        for key in ("Namespace", "MetricName", "Dimensions", "Period", "EvaluationPeriods", "Threshold",
                    "ComparisonOperator", "TreatMissingData", "Statistic", "ExtendedStatistic"):
            assert made.get(key) == alarm.get(key), (alarm["AlarmName"], key)
    by_metric = {(a["Namespace"], a["MetricName"]) for a in first["alarms"].values()}
    assert {("AWS/Lambda", "IteratorAge"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/ApiGateway", "5XXError"),
            ("AWS/ApiGateway", "Latency"), ("AWS/ApiGateway", "ExecutionError"),
            ("AWS/DynamoDB", "WriteThrottleEvents")} <= by_metric


def test_alert_email_subscribes_to_the_topic(cycle):
    assert list(cycle["first prod"]["topics"].values()) == [[("email", ALERT_EMAIL)]]
    assert list(cycle["first dev"]["topics"].values()) == [[]]  # no ALERT_EMAIL, no subscription


def test_the_dashboard_shows_the_stage(first, stage):
    (websocket_id,) = first["websocket_apis"]
    body = json.loads(first["dashboards"][stage.dashboard_name])
    assert json.dumps(body, separators=(",", ":")) == monitoring.dashboard_body(
        stage, build_template.monitored_functions(stage), STREAM_FUNCTION.name(stage), REGION, websocket_id)


def test_every_function_is_traced_and_the_stream_reserved(first, stage):
    for name, configuration in first["functions"].items():
        assert configuration["TracingConfig"] == {"Mode": "Active"}, name
    reserved = {name: value for name, value in first["concurrency"].items() if value is not None}
    assert reserved == {STREAM_FUNCTION.name(stage): stage.stream_reserved_concurrency}


def test_the_stages_are_throttled_and_the_rest_stage_traced(first, stage):
    (api,) = first["rest_apis"].values()
    assert api["stage"]["tracingEnabled"] is True
    settings = api["stage"]["methodSettings"]["*/*"]
    assert settings["throttlingRateLimit"] == stage.api_rate_limit
    assert settings["throttlingBurstLimit"] == stage.api_burst_limit
    (websocket,) = first["websocket_apis"].values()
    assert websocket["route_settings"] == {"ThrottlingRateLimit": stage.api_rate_limit,
                                           "ThrottlingBurstLimit": stage.api_burst_limit}


def test_a_deploy_again_keeps_what_watches_the_stage(cycle):
    first, again = cycle["first dev"], cycle["again dev"]
    for key in ("alarms", "dashboards", "topics", "concurrency"):
        assert again[key] == first[key], key
    (api,) = again["rest_apis"].values()
    assert api["stage"]["methodSettings"] == next(iter(first["rest_apis"].values()))["stage"]["methodSettings"]
    for configuration in again["functions"].values():
        assert configuration["TracingConfig"] == {"Mode": "Active"}


def test_api_gateways_own_answers_are_the_apis(first, stage):
    """An unknown route is the API's 404, never API Gateway's 403 quoting the
    Authorization header; its other errors carry the CORS headers."""
    (api_id,) = first["rest_apis"]
    responses = first["gateway_responses"][api_id]
    unknown = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert unknown["statusCode"] == "404"
    assert json.loads(unknown["responseTemplates"]["application/json"]) == gateway.UNKNOWN_ROUTE_BODY
    for kind in ("MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"):
        assert "gatewayresponse.header.Access-Control-Allow-Origin" in responses[kind]["responseParameters"]
