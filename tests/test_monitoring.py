"""What watches each stage, checked in what both paths deploy (infra/monitoring.py
through infra/build_template.py): the alarms and what they watch, their
actions, the dashboard, tracing, throttling, the names that tell the stages
apart, and the README's account of every alarm. What moto cannot run
(alarms firing, metrics, X-Ray, throttling) is checked here as configuration;
tests/test_deploy_cycle.py checks make deploy puts it all in place."""

import ast
import json
from pathlib import Path

import pytest

from infra import build_template, monitoring
from infra.build_template import FUNCTIONS, STAGES, STREAM_FUNCTION

ROOT = Path(__file__).resolve().parent.parent
WEBSOCKET_REF = {"Ref": build_template.WEBSOCKET_API_ID}
TOPIC_REF = {"Ref": build_template.ALARM_TOPIC_ID}


@pytest.fixture(params=sorted(STAGES))
def stage(request):
    return STAGES[request.param]


def alarms_of(stage):
    return monitoring.alarm_properties(stage, build_template.monitored_functions(stage), STREAM_FUNCTION.name(stage),
                                       WEBSOCKET_REF, TOPIC_REF)


def by_metric(stage):
    found = {}
    for alarm in alarms_of(stage):
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        found.setdefault((alarm["Namespace"], alarm["MetricName"]), []).append((dimensions, alarm))
    return found


def test_every_alarm_the_issue_names_watches_this_stage(stage):
    alarms = by_metric(stage)
    api = {"ApiName": stage.rest_api_name, "Stage": stage.api_gateway_stage}
    websocket = {"ApiId": WEBSOCKET_REF, "Stage": stage.api_gateway_stage}
    [(dims, age)] = alarms[("AWS/Lambda", "IteratorAge")]
    assert dims == {"FunctionName": STREAM_FUNCTION.name(stage)} and age["Statistic"] == "Maximum"
    assert age["Threshold"] * age["EvaluationPeriods"] / 1000 < stage.max_record_age_seconds  # long before a give-up
    [(dims, queued)] = alarms[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    assert dims == {"QueueName": stage.failure_queue_name} and queued["Threshold"] == 0
    for metric in ("Errors", "Throttles"):
        watched = [dims["FunctionName"] for dims, _ in alarms[("AWS/Lambda", metric)]]
        assert watched == [f.name(stage) for f in FUNCTIONS], metric
    [(dims, errors)] = alarms[("AWS/ApiGateway", "5XXError")]
    assert dims == api and errors["Statistic"] == "Average" and 0 < errors["Threshold"] < 1  # a rate
    [(dims, latency)] = alarms[("AWS/ApiGateway", "Latency")]
    assert dims == api and latency["ExtendedStatistic"] == "p99" and "Statistic" not in latency
    assert latency["Threshold"] < 29_000  # under API Gateway's own limit, or it could never fire
    for metric in ("ExecutionError", "IntegrationError"):
        [(dims, _)] = alarms[("AWS/ApiGateway", metric)]
        assert dims == websocket, metric
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        [(dims, _)] = alarms[("AWS/DynamoDB", metric)]
        assert dims == {"TableName": stage.table_name}, metric


def test_every_alarm_notifies_the_topic_and_is_named_for_its_stage(stage):
    names = []
    for alarm in alarms_of(stage):
        assert alarm["AlarmActions"] == alarm["OKActions"] == [TOPIC_REF]
        assert alarm["AlarmName"].startswith(f"{stage.rest_api_name}-")
        assert alarm["TreatMissingData"] == "notBreaching"  # an idle stage is not an alarm
        assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]
        names.append(alarm["AlarmName"])
    assert len(names) == len(set(names))
    other = [s for s in STAGES.values() if s is not stage][0]
    assert not {a["AlarmName"] for a in alarms_of(other)} & set(names)


def test_the_readme_says_what_each_alarm_means_and_its_threshold():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Operating it"):]
    section = section[:section.index("\n## ", 3)] if "\n## " in section[3:] else section
    for alarm in monitoring.alarms(STAGES["prod"], build_template.monitored_functions(STAGES["prod"]),
                                   STREAM_FUNCTION.name(STAGES["prod"]), "id"):
        suffix = alarm.suffix
        if suffix.endswith(("-errors", "-throttles")) and alarm.namespace == "AWS/Lambda":
            suffix = "<function>-" + suffix.rsplit("-", 1)[1]
        assert f"`{suffix}`" in section, suffix


def test_the_merged_template_declares_the_alarms_dashboard_and_subscription(stage):
    resources = build_template.merge_template(stage)["Resources"]
    declared = [r["Properties"] for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm"]
    assert declared == alarms_of(stage)
    subscription = resources[build_template.ALARM_SUBSCRIPTION_ID]
    assert subscription["Condition"] == "HasAlertEmail" and subscription["Properties"]["Protocol"] == "email"
    dashboard = resources[build_template.DASHBOARD_ID]["Properties"]
    assert dashboard["DashboardName"] == stage.dashboard_name
    body = json.loads(dashboard["DashboardBody"]["Fn::Sub"])
    assert all(w["properties"]["region"] == "${AWS::Region}" for w in body["widgets"])


def code_metric_names():
    """Every metric name the code counts or measures (metrics.count / metrics.measure)."""
    found = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and getattr(node.func.value, "id", None) == "metrics"
                    and node.func.attr in ("count", "measure")):
                found.add(node.args[0].value)
    return found


def test_the_dashboard_shows_every_alarms_metric_and_every_metric_of_the_code(stage):
    functions = build_template.monitored_functions(stage)
    body = json.loads(monitoring.dashboard_body(stage, functions, STREAM_FUNCTION.name(stage), "eu-west-1", "abc123"))
    shown = {(m[0], m[1], tuple(m[2:])) for w in body["widgets"] for m in
             ([x for x in metric if not isinstance(x, dict)] for metric in w["properties"]["metrics"])}
    for alarm in monitoring.alarm_properties(stage, functions, STREAM_FUNCTION.name(stage), "abc123", "topic"):
        dims = tuple(v for d in alarm["Dimensions"] for v in (d["Name"], d["Value"]))
        assert (alarm["Namespace"], alarm["MetricName"], dims) in shown, alarm["AlarmName"]
    ours = {name for namespace, name, dims in shown if namespace == monitoring.NAMESPACE}
    assert ours == code_metric_names() == {"MessagesSent", "CopiesWritten", "FanoutLag", "PushesSent",
                                           "PushesGone", "PushesFailed", "BusEntries", "JobStepsFailed",
                                           "JobsFailed"}
    assert all(dims == ("Stage", stage.name) for namespace, _, dims in shown if namespace == monitoring.NAMESPACE)


def test_tracing_throttling_and_names_in_the_merged_template(stage):
    resources = build_template.merge_template(stage)["Resources"]
    rest = resources[build_template.REST_API_ID]["Properties"]
    assert rest["Name"] == stage.rest_api_name != STAGES["dev" if stage.name == "prod" else "prod"].rest_api_name
    assert rest["TracingEnabled"] is True
    assert rest["MethodSettings"] == [{"ResourcePath": "/*", "HttpMethod": "*",
                                       "ThrottlingRateLimit": stage.api_rate_limit,
                                       "ThrottlingBurstLimit": stage.api_burst_limit}]
    websocket = resources[build_template.WEBSOCKET_STAGE_ID]["Properties"]["DefaultRouteSettings"]
    assert websocket == {"ThrottlingRateLimit": stage.api_rate_limit, "ThrottlingBurstLimit": stage.api_burst_limit}
    assert build_template.stack_environment(stage)["CHAT_STAGE"] == stage.name


def test_the_app_is_named_after_its_stage(monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("CHAT_STAGE", "prod")
    assert config.load().app_name == STAGES["prod"].rest_api_name
    monkeypatch.delenv("CHAT_STAGE")
    assert config.load().app_name == build_template.APP_NAME


def test_the_stream_reservation_fits_a_shard_and_leaves_the_api_the_account():
    """At least one shard's batches at once (parallelization_factor), at most
    a tenth of Lambda's default regional concurrency (1,000): the API and the
    websocket functions keep the rest."""
    for stage in STAGES.values():
        assert stage.parallelization_factor <= stage.stream_reserved_concurrency <= 100


def test_the_readme_states_each_stages_throttling_and_reservation():
    readme = (ROOT / "README.md").read_text()
    for stage in STAGES.values():
        row = f"| {stage.name} | {stage.api_rate_limit:,.0f} / {stage.api_burst_limit:,} requests per second | " \
              f"{stage.stream_reserved_concurrency} |"
        assert row in readme, row


def test_api_gateways_own_answers_are_the_apis_in_the_merged_template(stage):
    """make package's template sets the gateway responses make deploy puts (test_deploy_cycle.py)."""
    from devtools import gateway

    rest = build_template.merge_template(stage)["Resources"][build_template.REST_API_ID]["Properties"]
    unknown = rest["GatewayResponses"]["MISSING_AUTHENTICATION_TOKEN"]
    assert unknown["StatusCode"] == "404"
    assert json.loads(unknown["ResponseTemplates"]["application/json"]) == gateway.UNKNOWN_ROUTE_BODY
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        assert "StatusCode" not in rest["GatewayResponses"][kind]
        assert "Access-Control-Allow-Origin" in rest["GatewayResponses"][kind]["ResponseParameters"]["Headers"]
