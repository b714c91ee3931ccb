"""`make deploy` and `make undeploy`: one stage on AWS, the Chalice way.

    python infra/deploy.py deploy --stage prod [--repair]
    python infra/deploy.py undeploy --stage prod [--repair]

deploy (create or update; run it as often as you like):

1. the stage's stack, infra/stack-<stage>.json (CloudFormation): what `chalice
   deploy` cannot create, that is the table, the event bus, the stream failure
   queue and the functions' log groups. Its outputs (table, stream ARN, bus,
   secret parameter name) go into the stage's environment_variables in
   .chalice/config.json, where Chalice reads them;
2. `chalice deploy --stage <stage>`: roles, functions, the stream mapping, the
   REST and websocket APIs. From then on plain `chalice deploy` works too;
3. what Chalice cannot set, which its later deploys leave in place: the stream
   mapping's failure handling (ReportBatchItemFailures, bisection, retry and
   age limits, the failure queue), the websocket management endpoint
   (CHAT_WEBSOCKET_ENDPOINT, into config.json and every function, since the
   API's id is known only now), the push permission on that API, and Lambda's
   log format and level.

Chalice knows what it made only from .chalice/deployed/<stage>.json. Before
step 2 this compares that file with what exists: without it Chalice would make
a second REST API, websocket API and stream mapping; and it keeps a mapping on a
stream that is no longer the table's. Either stops the deploy with a message;
--repair (REPAIR=1) rebuilds the file from what exists, deletes duplicates, and
replaces a mapping on an old stream.

undeploy: `chalice delete`, then the stack. The prod table stays (Retain, with
deletion protection on), with its data; so does the secret parameter, which is
yours.

Every AWS call, here (boto3) and in Chalice (botocore), honours AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.exceptions import ClientError, WaiterError  # noqa: E402

from infra import package  # noqa: E402
from infra.build_template import (  # noqa: E402
    API_FUNCTION,
    APP_NAME,
    FUNCTIONS,
    PUSH_POLICY_NAME,
    PUSHING_FUNCTION_IDS,
    STAGES,
    STREAM_FUNCTION,
    Stage,
    log_group_name,
    logging_config,
    output_name,
    push_policy_document,
    stack_environment,
    stream_mapping_settings,
)

WEBSOCKET_ENDPOINT = "CHAT_WEBSOCKET_ENDPOINT"
# Variables whose values belong to one account's deployment: undeploy removes
# them from .chalice/config.json (the others are the same in every account).
ACCOUNT_VARIABLES = ("CHAT_STREAM_ARN", WEBSOCKET_ENDPOINT)
STREAM_MAPPING = f"{STREAM_FUNCTION.resource_name}-dynamodb-event-source"  # Chalice's name for it
WAIT = {"Delay": 5, "MaxAttempts": 720}  # CloudFormation: up to an hour


class DeployError(Exception):
    """A stop with a message for the person deploying."""


def say(message: str) -> None:
    print(f"[deploy] {message}", flush=True)


# ---- the project: .chalice/config.json and .chalice/deployed/<stage>.json ----

@dataclass
class Project:
    directory: Path
    stage: Stage

    @property
    def config_path(self) -> Path:
        return self.directory / ".chalice" / "config.json"

    @property
    def state_path(self) -> Path:
        return self.directory / ".chalice" / "deployed" / f"{self.stage.name}.json"

    def config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text())

    def environment(self) -> dict[str, str]:
        return dict(self.config()["stages"][self.stage.name].get("environment_variables", {}))

    def set_environment(self, updates: dict[str, str], remove: tuple[str, ...] = ()) -> bool:
        """Set (and remove) the stage's variables in config.json; True if it changed."""
        config = self.config()
        variables = config["stages"][self.stage.name].setdefault("environment_variables", {})
        before = dict(variables)
        variables.update(updates)
        for name in remove:
            variables.pop(name, None)
        if variables == before:
            return False
        write(self.config_path, json.dumps(config, indent=2) + "\n")
        return True

    def function_environment(self, function_name: str) -> dict[str, str]:
        """The environment Chalice gives a function on deploy (its own merge of the config's levels)."""
        from chalice.config import Config

        config = Config(chalice_stage=self.stage.name, config_from_disk=self.config())
        return config.scope(self.stage.name, function_name).environment_variables

    def api_gateway_stage(self) -> str:
        config = self.config()
        return config["stages"][self.stage.name].get("api_gateway_stage", config.get("api_gateway_stage", "api"))

    def state(self) -> dict[str, Any] | None:
        if not self.state_path.exists():
            return None
        return json.loads(self.state_path.read_text())

    def write_state(self, state: dict[str, Any]) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write(self.state_path, json.dumps(state, indent=2) + "\n")


def write(path: Path, text: str) -> None:
    """All or nothing: an interrupted deploy never leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def records(state: dict[str, Any] | None, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in (state or {}).get("resources", []) if r["resource_type"] == resource_type]


# ---- AWS --------------------------------------------------------------------

class Aws:
    """boto3 clients of one region (and AWS_ENDPOINT_URL, if set)."""

    def __init__(self) -> None:
        session = boto3.session.Session()
        self.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or session.region_name
        if not self.region:
            raise DeployError("no region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)")
        self._session = boto3.session.Session(region_name=self.region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    def __getattr__(self, service: str) -> Any:  # aws.cloudformation, aws.iam, ...
        if service.startswith("_"):
            raise AttributeError(service)
        return self.client(service)

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def stack_status(aws: Aws, name: str) -> str | None:
    try:
        stacks = aws.cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    status = stacks[0]["StackStatus"] if stacks else None
    return None if status == "DELETE_COMPLETE" else status


def stack_failure(aws: Aws, name: str) -> str:
    """The reasons CloudFormation gave, for the message."""
    try:
        events = aws.cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError:
        return ""
    reasons = [f"  {e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events
               if e.get("ResourceStatus", "").endswith("FAILED")]
    return "\n".join(reasons[:10])


def wait_for_stack(aws: Aws, name: str, waiter: str) -> None:
    try:
        aws.cloudformation.get_waiter(waiter).wait(StackName=name, WaiterConfig=WAIT)
    except WaiterError as error:
        raise DeployError(f"stack {name}: {error}\n{stack_failure(aws, name)}") from error


def table_exists(aws: Aws, name: str) -> bool:
    try:
        aws.dynamodb.describe_table(TableName=name)
        return True
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return False
        raise


def deploy_stack(aws: Aws, stage: Stage, template: Path) -> dict[str, str]:
    """Create or update the stage's stack; its outputs."""
    if stack_status(aws, stage.package_stack_name):
        raise DeployError(
            f"stack {stage.package_stack_name} exists: this stage was deployed with `make package` and "
            "CloudFormation, whose resources have the same names. Delete that stack first (README, Tear down).")
    name, body = stage.stack_name, template.read_text()
    status = stack_status(aws, name)
    if status == "ROLLBACK_COMPLETE":  # a first creation that failed: it holds nothing, and cannot be updated
        say(f"stack {name} failed to create before; deleting it to start again")
        aws.cloudformation.delete_stack(StackName=name)
        wait_for_stack(aws, name, "stack_delete_complete")
        status = None
    if status is None:
        if table_exists(aws, stage.table_name):
            raise DeployError(
                f"table {stage.table_name} exists outside any stack (kept by an earlier undeploy, with its data?). "
                "Creating the stack would fail on its name. Delete the table (README, Tear down), or import it "
                f"into a stack named {name} made from infra/stack-{stage.name}.json (CloudFormation resource "
                "import), then run make deploy again.")
        say(f"creating stack {name}")
        aws.cloudformation.create_stack(StackName=name, TemplateBody=body,
                                        Tags=[{"Key": "app", "Value": APP_NAME}, {"Key": "stage", "Value": stage.name}])
        wait_for_stack(aws, name, "stack_create_complete")
    elif status.endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {name} is {status}: wait for it, then run make deploy again")
    elif status.endswith("_FAILED"):
        raise DeployError(f"stack {name} is {status}:\n{stack_failure(aws, name)}\n"
                          "see its events in the CloudFormation console, fix the cause, then run make deploy again")
    else:
        try:
            aws.cloudformation.update_stack(StackName=name, TemplateBody=body)
        except ClientError as error:
            if "No updates are to be performed" not in str(error):
                raise
            say(f"stack {name} is up to date")
        else:
            say(f"updating stack {name}")
            wait_for_stack(aws, name, "stack_update_complete")
    stack = aws.cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def live_stream_arn(aws: Aws, table_name: str) -> str:
    """The table's stream now (the stack's output is what it was when the stack last changed it)."""
    table = aws.dynamodb.describe_table(TableName=table_name)["Table"]
    if not table.get("StreamSpecification", {}).get("StreamEnabled") or not table.get("LatestStreamArn"):
        raise DeployError(f"table {table_name} has no stream: the fan-out needs it (NEW_AND_OLD_IMAGES)")
    return table["LatestStreamArn"]


def check_secret(aws: Aws, stage: Stage) -> None:
    name = stage.jwt_secret_parameter
    found = aws.ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])["Parameters"]
    if not found:
        raise DeployError(
            f"no SSM parameter {name}: the functions read the JWT secret from it. Create it first:\n"
            f"  aws ssm put-parameter --name {name} --type SecureString "
            "--value \"$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\"")
    if found[0].get("Type") != "SecureString":
        say(f"warning: {name} is a {found[0].get('Type')}, not a SecureString")


# ---- what exists, and what Chalice's state file says -------------------------

@dataclass
class Inventory:
    """This stage's Chalice-made resources that exist, found by their names."""

    functions: dict[str, str] = field(default_factory=dict)  # Chalice resource name -> ARN
    roles: dict[str, str] = field(default_factory=dict)  # role name -> ARN
    mappings: list[dict[str, Any]] = field(default_factory=list)  # on the stream function
    websocket_apis: list[str] = field(default_factory=list)  # ids, by the name Chalice gives
    rest_apis: list[str] = field(default_factory=list)  # ids of APIs allowed to invoke the API handler

    def empty(self) -> bool:
        return not (self.functions or self.roles or self.mappings or self.websocket_apis or self.rest_apis)

    def describe(self) -> str:
        lines = [f"  function {n}" for n in self.functions] + [f"  role {n}" for n in self.roles]
        lines += [f"  stream mapping {m['UUID']} ({m['EventSourceArn']})" for m in self.mappings]
        lines += [f"  websocket API {i}" for i in self.websocket_apis] + [f"  REST API {i}" for i in self.rest_apis]
        return "\n".join(lines)


def inventory(aws: Aws, stage: Stage) -> Inventory:
    found = Inventory()
    for function in FUNCTIONS:
        try:
            config = aws.lambda_.get_function_configuration(FunctionName=function.name(stage))
            found.functions[function.resource_name] = config["FunctionArn"]
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
        try:
            found.roles[function.role_name(stage)] = aws.iam.get_role(RoleName=function.role_name(stage))["Role"]["Arn"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
    lambda_ = aws.lambda_
    if STREAM_FUNCTION.resource_name in found.functions:
        arn = found.functions[STREAM_FUNCTION.resource_name]  # as Chalice names it in the mapping
        for page in lambda_.get_paginator("list_event_source_mappings").paginate(FunctionName=arn):
            found.mappings += [m for m in page["EventSourceMappings"] if m["FunctionArn"] == arn]
    token = None
    while True:
        page = aws.apigatewayv2.get_apis(**({"NextToken": token} if token else {}))
        found.websocket_apis += [a["ApiId"] for a in page["Items"] if a["Name"] == stage.websocket_api_name]
        token = page.get("NextToken")
        if not token:
            break
    # Chalice names the REST API after the app in every stage: it is this
    # stage's if it may invoke this stage's API handler.
    allowed = set()
    if API_FUNCTION.resource_name in found.functions:
        try:
            policy = json.loads(lambda_.get_policy(FunctionName=API_FUNCTION.name(stage))["Policy"])
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            policy = {"Statement": []}
        for statement in policy["Statement"]:
            source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn", "")
            if ":execute-api:" in source:
                allowed.add(source.split(":")[5].split("/")[0])
    for page in aws.apigateway.get_paginator("get_rest_apis").paginate():
        found.rest_apis += [a["id"] for a in page["items"] if a["name"] == APP_NAME and a["id"] in allowed]
    return found


def rebuilt_records(aws: Aws, project: Project, found: Inventory, kinds: set[str],
                    mapping_ids: tuple[str, ...] | list[str] = ()) -> list[dict[str, Any]]:
    """State records, in Chalice's format, of the existing resources of these kinds."""
    stage, api_stage = project.stage, project.api_gateway_stage()
    out: list[dict[str, Any]] = []
    for function in FUNCTIONS:
        role = function.role_name(stage)
        if "iam_role" in kinds and role in found.roles:
            out.append({"name": f"{function.resource_name}_role", "resource_type": "iam_role",
                        "role_arn": found.roles[role], "role_name": role})
        if "lambda_function" in kinds and function.resource_name in found.functions:
            out.append({"name": function.resource_name, "resource_type": "lambda_function",
                        "lambda_arn": found.functions[function.resource_name]})
        if function is STREAM_FUNCTION and "dynamodb_event" in kinds and mapping_ids:
            (mapping,) = [m for m in found.mappings if m["UUID"] in mapping_ids]
            out.append({"name": STREAM_MAPPING, "resource_type": "dynamodb_event",
                        "stream_arn": mapping["EventSourceArn"], "event_uuid": mapping["UUID"],
                        "lambda_arn": mapping["FunctionArn"]})
        if function is API_FUNCTION and "rest_api" in kinds and found.rest_apis:
            (api_id,) = found.rest_apis
            out.append({"name": "rest_api", "resource_type": "rest_api", "rest_api_id": api_id,
                        "rest_api_url": f"https://{api_id}.execute-api.{aws.region}.amazonaws.com/{api_stage}/"})
    if "websocket_api" in kinds and found.websocket_apis:
        (api_id,) = found.websocket_apis
        out.append({"name": "websocket_api", "resource_type": "websocket_api",
                    "websocket_api_url": f"wss://{api_id}.execute-api.{aws.region}.amazonaws.com/{api_stage}/",
                    "websocket_api_id": api_id})
    return out


def delete_mapping(aws: Aws, uuid: str) -> None:
    aws.lambda_.delete_event_source_mapping(UUID=uuid)


def reconcile(aws: Aws, project: Project, repair: bool, stream_arn: str | None) -> None:
    """Make .chalice/deployed/<stage>.json name exactly what exists of this
    stage's REST API, websocket API and stream mapping, which Chalice finds
    only through that file; with stream_arn, also check that the mapping reads
    that stream. Without repair, stop on any difference."""
    state = project.state()
    found = inventory(aws, project.stage)
    state_name = project.state_path.relative_to(project.directory)
    mapping_ids = [m["UUID"] for m in found.mappings
                   if stream_arn is None or m["EventSourceArn"] == stream_arn]
    kinds = {
        "rest_api": ("REST API", "rest_api_id", found.rest_apis),
        "websocket_api": ("websocket API", "websocket_api_id", found.websocket_apis),
        "dynamodb_event": ("stream mapping", "event_uuid", [m["UUID"] for m in found.mappings]),
    }

    # Recorded but gone (deleted by hand, or with its function): forget it.
    # Chalice would make a new one anyway, or, for a mapping, fail to delete it.
    for kind, (label, key, existing) in kinds.items():
        for record in records(state, kind):
            if record[key] not in existing and not exists(aws, kind, record[key]):
                say(f"{label} {record[key]}, named in {state_name}, no longer exists: forgetting it")
                state["resources"].remove(record)
                project.write_state(state)

    problems: list[str] = []
    fixes: list[Any] = []  # run only with repair, after the adoptions
    adopt: set[str] = set()
    kinds["dynamodb_event"] = ("stream mapping", "event_uuid", mapping_ids)  # those on another stream: below
    for kind, (label, key, existing) in kinds.items():
        tracked = {r[key] for r in records(state, kind)}
        untracked = [i for i in existing if i not in tracked]
        if not untracked:
            continue
        if tracked:
            problems.append(f"{label} {', '.join(untracked)} duplicates {', '.join(tracked)}, which {state_name} "
                            "names (made by a deploy without that file?); repair deletes the duplicates")
            fixes.append(lambda kind=kind, ids=untracked: delete_untracked(aws, kind, ids))
        elif len(untracked) == 1:
            problems.append(f"{label} {untracked[0]} exists but {state_name} does not name it (the file is lost, "
                            "or a deploy failed): Chalice would make a second one; repair adds it to the file")
            adopt.add(kind)
        else:
            raise DeployError(f"{label}s {', '.join(untracked)} all belong to this stage and {state_name} names "
                              "none of them: keep the one your clients use, delete the others by hand, "
                              "then run make deploy REPAIR=1")
    if adopt and state is None:  # rebuild the whole file: chalice delete then finds everything too
        adopt |= {"iam_role", "lambda_function"}

    for mapping in found.mappings:
        if stream_arn is not None and mapping["EventSourceArn"] != stream_arn:
            problems.append(
                f"stream mapping {mapping['UUID']} reads {mapping['EventSourceArn']}, but the table's stream is now "
                f"{stream_arn} (the table was replaced, or its stream turned off and on). Chalice would keep the "
                "old mapping without a word; repair deletes it, and chalice deploy subscribes the new stream "
                "(from LATEST: records written to the new stream before then are not delivered)")
            fixes.append(lambda uuid=mapping["UUID"]: forget_mapping(aws, project, uuid))

    if not problems:
        return
    message = "\n".join(f"- {p}" for p in problems)
    if not repair:
        raise DeployError(
            f"{state_name} (Chalice's record of what it made for stage {project.stage.name}) does not "
            f"match what exists:\n{message}\n"
            f"If you have the right {state_name} (git, a backup), put it back. Otherwise run "
            f"`make deploy STAGE={project.stage.name} REPAIR=1` (or `make undeploy ... REPAIR=1`) to do the above.")
    say(f"repairing:\n{message}")
    if adopt:
        state = project.state() or {"resources": [], "schema_version": "2.0", "backend": "api"}
        known = {r["name"] for r in state["resources"]}
        state["resources"] += [r for r in rebuilt_records(aws, project, found, adopt, mapping_ids)
                               if r["name"] not in known]
        project.write_state(state)
    for fix in fixes:
        fix()


def exists(aws: Aws, kind: str, resource_id: str) -> bool:
    """Asked by id, not by listing: only a definite no forgets a record."""
    try:
        if kind == "rest_api":
            aws.apigateway.get_rest_api(restApiId=resource_id)
        elif kind == "websocket_api":
            aws.apigatewayv2.get_api(ApiId=resource_id)
        else:
            aws.lambda_.get_event_source_mapping(UUID=resource_id)
    except ClientError as error:
        if error_code(error) in ("NotFoundException", "ResourceNotFoundException"):
            return False
        raise
    return True


def delete_untracked(aws: Aws, kind: str, ids: list[str]) -> None:
    for resource_id in ids:
        say(f"deleting duplicate {kind} {resource_id}")
        if kind == "rest_api":
            aws.apigateway.delete_rest_api(restApiId=resource_id)
        elif kind == "websocket_api":
            aws.apigatewayv2.delete_api(ApiId=resource_id)
        else:
            delete_mapping(aws, resource_id)


def forget_mapping(aws: Aws, project: Project, uuid: str) -> None:
    say(f"deleting stream mapping {uuid} (old stream)")
    delete_mapping(aws, uuid)
    state = project.state()
    if state is not None:
        state["resources"] = [r for r in state["resources"] if r.get("event_uuid") != uuid]
        project.write_state(state)


# ---- Chalice ------------------------------------------------------------------

def chalice(project: Project, aws: Aws, command: str) -> None:
    """`chalice deploy|delete --stage <stage>`, with pip on the wheelhouse (Lambda's wheels)."""
    if command == "deploy":
        package.require_wheelhouse()
    env = package.pip_env()
    env["AWS_DEFAULT_REGION"] = aws.region  # botocore reads this one, not AWS_REGION
    executable = Path(sys.executable).parent / "chalice"
    say(f"chalice {command} --stage {project.stage.name}")
    result = subprocess.run([str(executable), "--project-dir", str(project.directory), command,
                             "--stage", project.stage.name], env=env)
    if result.returncode != 0:
        raise DeployError(
            f"chalice {command} failed (exit {result.returncode}). A failed chalice deploy records nothing in "
            f"{project.state_path.name}: fix the cause and run make deploy again; it reports what the failed "
            "run made, and REPAIR=1 adds that to the file.")


# ---- after chalice deploy ---------------------------------------------------

def after_chalice(aws: Aws, project: Project, outputs: dict[str, str], stream_arn: str) -> None:
    stage, lambda_ = project.stage, aws.lambda_
    state = project.state()
    (mapping_record,) = records(state, "dynamodb_event") or [None]
    (websocket,) = records(state, "websocket_api") or [None]
    if mapping_record is None or websocket is None:
        raise DeployError(f"{project.state_path} names no stream mapping or no websocket API after chalice deploy")

    # The stream mapping: the stack's stream, and the failure handling and concurrency Chalice cannot set.
    mapping = lambda_.get_event_source_mapping(UUID=mapping_record["event_uuid"])
    if mapping["EventSourceArn"] != stream_arn:
        raise DeployError(f"stream mapping {mapping['UUID']} reads {mapping['EventSourceArn']}, not the table's "
                          f"stream {stream_arn}: run make deploy REPAIR=1")
    wanted = stream_mapping_settings(stage, outputs["StreamFailureQueueArn"])
    if any(mapping.get(key) != value for key, value in wanted.items()):
        say(f"stream mapping {mapping['UUID']}: failure handling, parallelization factor")
        lambda_.update_event_source_mapping(UUID=mapping["UUID"], **wanted)

    # The websocket management endpoint: in config.json (Chalice sends the
    # whole environment on every deploy) and in every function now.
    endpoint = (f"https://{websocket['websocket_api_id']}.execute-api.{aws.region}.amazonaws.com/"
                f"{project.api_gateway_stage()}")
    if project.set_environment({WEBSOCKET_ENDPOINT: endpoint}):
        say(f"{project.config_path.relative_to(project.directory)}: {WEBSOCKET_ENDPOINT}={endpoint}")
    for function in FUNCTIONS:
        name = function.name(stage)
        current = lambda_.get_function_configuration(FunctionName=name)
        changes: dict[str, Any] = {}
        environment = project.function_environment(function.resource_name)
        if current.get("Environment", {}).get("Variables", {}) != environment:
            changes["Environment"] = {"Variables": environment}
        logging = logging_config(stage, log_group_name(name))
        if any(current.get("LoggingConfig", {}).get(key) != value for key, value in logging.items()):
            changes["LoggingConfig"] = logging
        if changes:
            say(f"function {name}: {', '.join(changes)}")
            lambda_.get_waiter("function_updated").wait(FunctionName=name)  # Lambda refuses overlapping updates
            lambda_.update_function_configuration(FunctionName=name, **changes)
            lambda_.get_waiter("function_updated").wait(FunctionName=name)

    # The push permission on this websocket API (a policy file cannot name its id).
    account = mapping["FunctionArn"].split(":")[4]
    connections = (f"arn:aws:execute-api:{aws.region}:{account}:{websocket['websocket_api_id']}/"
                   f"{project.api_gateway_stage()}/POST/@connections/*")
    for function in FUNCTIONS:
        if function.cfn_id in PUSHING_FUNCTION_IDS:
            aws.iam.put_role_policy(RoleName=function.role_name(stage), PolicyName=PUSH_POLICY_NAME,
                                    PolicyDocument=json.dumps(push_policy_document(connections)))

    reconcile(aws, project, repair=False, stream_arn=stream_arn)  # nothing twice, nothing untracked
    rest = records(state, "rest_api")
    say(f"stage {stage.name} deployed. REST API: {rest[0]['rest_api_url'] if rest else '?'}v1.0/  "
        f"websocket: {websocket['websocket_api_url']}")
    say(f"keep {project.state_path.relative_to(project.directory)} and "
        f"{project.config_path.relative_to(project.directory)}: they are how Chalice finds this deployment again")


# ---- the two commands ---------------------------------------------------------

def deploy(project: Project, repair: bool = False) -> None:
    aws = Aws()
    stage = project.stage
    check_secret(aws, stage)
    reconcile(aws, project, repair, stream_arn=None)  # stop before the stack changes anything
    outputs = deploy_stack(aws, stage, ROOT / "infra" / f"stack-{stage.name}.json")
    stream_arn = live_stream_arn(aws, outputs[output_name("CHAT_TABLE_NAME")])
    reconcile(aws, project, repair, stream_arn=stream_arn)  # before config.json names the new stream
    environment = {variable: outputs[output_name(variable)] for variable in stack_environment(stage)}
    environment["CHAT_STREAM_ARN"] = stream_arn
    if project.set_environment(environment):
        say(f"{project.config_path.relative_to(project.directory)}: environment of stage {stage.name} from the stack")
    chalice(project, aws, "deploy")
    after_chalice(aws, project, outputs, stream_arn)


def undeploy(project: Project, repair: bool = False) -> None:
    aws = Aws()
    stage = project.stage
    reconcile(aws, project, repair, stream_arn=None)
    found = inventory(aws, stage)
    tracked = {r["name"] for r in (project.state() or {}).get("resources", [])}
    untracked = ([f"function {n}" for n in found.functions if n not in tracked]
                 + [f"role {n}" for n in found.roles
                    if n.removeprefix(f"{APP_NAME}-{stage.name}-") + "_role" not in tracked])
    if untracked:
        if not repair:
            raise DeployError(f"chalice delete removes what {project.state_path.name} names, and it does not name: "
                              f"{', '.join(untracked)}. Put the right file back, or run make undeploy REPAIR=1 "
                              "to add them to it first")
        state = project.state() or {"resources": [], "schema_version": "2.0", "backend": "api"}
        state["resources"] += [r for r in rebuilt_records(aws, project, found, {"iam_role", "lambda_function"})
                               if r["name"] not in tracked]
        project.write_state(state)
    if project.state() is not None and project.state()["resources"]:
        chalice(project, aws, "delete")
    left = inventory(aws, stage)
    if not left.empty():
        raise DeployError(f"still there after chalice delete:\n{left.describe()}")
    if project.state_path.exists():
        project.state_path.unlink()  # it names nothing now
    if stack_status(aws, stage.stack_name):
        say(f"deleting stack {stage.stack_name}")
        aws.cloudformation.delete_stack(StackName=stage.stack_name)
        wait_for_stack(aws, stage.stack_name, "stack_delete_complete")
    project.set_environment({}, remove=ACCOUNT_VARIABLES)
    if stage.deletion_protection and table_exists(aws, stage.table_name):
        say(f"kept: table {stage.table_name} and its data (deletion protection on); README, Tear down, deletes it")
    say(f"kept: the SSM parameter {stage.jwt_secret_parameter} (yours; README, Tear down)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("deploy", "undeploy"))
    parser.add_argument("--stage", choices=sorted(STAGES), default="dev")
    parser.add_argument("--project-dir", type=Path, default=ROOT, help="the Chalice project (default: this one)")
    parser.add_argument("--repair", action="store_true",
                        help="make .chalice/deployed/<stage>.json match what exists, instead of stopping")
    args = parser.parse_args(argv)
    project = Project(args.project_dir.resolve(), STAGES[args.stage])
    try:
        (deploy if args.command == "deploy" else undeploy)(project, repair=args.repair)
    except DeployError as error:
        print(f"\nmake {args.command} STAGE={args.stage}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
