"""What watches a stage: its alarms and its dashboard, written once here for
both paths. `make deploy` puts them with the CloudWatch API once Chalice has
made the websocket API (its id is a dimension of its metrics); `make package`'s
merge template declares them as CloudFormation resources (infra/build_template.py).
The alarms' properties are PutMetricAlarm's parameters, which are also
AWS::CloudWatch::Alarm's properties.

Each alarm's threshold, what it means and what to do: README, "Operating it"
(tests/test_deploy.py checks the README names every alarm)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NAMESPACE = "VoipbinChat"  # chalicelib/metrics.py (the code's own metrics, EMF)
FIVE_MINUTES = 300


@dataclass(frozen=True)
class Alarm:
    """One alarm's definition, less its name prefix and actions."""

    suffix: str  # the alarm is "<app>-<stage>-<suffix>"
    namespace: str
    metric: str
    dimensions: dict[str, Any]
    threshold: float
    period: int = FIVE_MINUTES
    evaluation_periods: int = 1
    statistic: str = "Sum"  # or pNN: an extended statistic
    comparison: str = "GreaterThanThreshold"
    description: str = ""

    def properties(self, prefix: str, topic: Any) -> dict[str, Any]:
        statistic = ({"ExtendedStatistic": self.statistic} if self.statistic.startswith("p")
                     else {"Statistic": self.statistic})
        return {
            "AlarmName": f"{prefix}-{self.suffix}",
            "AlarmDescription": f"{self.description} README, Operating it: {self.suffix}.",
            "Namespace": self.namespace,
            "MetricName": self.metric,
            "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions.items()],
            **statistic,
            "Period": self.period,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.evaluation_periods,
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,
            # No requests, no records: nothing is wrong (an idle dev stage stays OK).
            "TreatMissingData": "notBreaching",
            "AlarmActions": [topic],
            "OKActions": [topic],
        }


def alarms(stage, functions: dict[str, str], stream_function_name: str, websocket_api_id: Any) -> list[Alarm]:
    """Every alarm of a stage. `functions`: Chalice's resource name -> the
    function's name; `websocket_api_id`: a value, or a CloudFormation reference."""
    api = {"ApiName": stage.rest_api_name, "Stage": stage.api_gateway_stage}
    websocket = {"ApiId": websocket_api_id, "Stage": stage.api_gateway_stage}
    found = [
        Alarm("stream-iterator-age", "AWS/Lambda", "IteratorAge", {"FunctionName": stream_function_name},
              threshold=60_000, period=60, evaluation_periods=5, statistic="Maximum",
              description="The fan-out is more than a minute behind the table for 5 minutes: copies and pushes "
                          "are late, and records older than the mapping's maximum age are given up."),
        Alarm("stream-failures-queued", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
              {"QueueName": stage.failure_queue_name}, threshold=0, statistic="Maximum",
              description="The stream gave up records: their copies or cascades are missing until "
                          "`make redrive` replays them."),
    ]
    for short, name in functions.items():
        found += [
            Alarm(f"{short}-errors", "AWS/Lambda", "Errors", {"FunctionName": name}, threshold=0,
                  description=f"{name} crashed or timed out (handled errors are answers, not Errors)."),
            Alarm(f"{short}-throttles", "AWS/Lambda", "Throttles", {"FunctionName": name}, threshold=0,
                  description=f"{name} was refused for want of concurrency."),
        ]
    found += [
        Alarm("api-5xx-rate", "AWS/ApiGateway", "5XXError", api, threshold=0.01, evaluation_periods=2,
              statistic="Average",
              description="More than 1% of REST answers are 5xx for 10 minutes."),
        Alarm("api-latency-p99", "AWS/ApiGateway", "Latency", api, threshold=3000, evaluation_periods=3,
              statistic="p99",
              description="The REST API's p99 latency is above 3 s for 15 minutes."),
        Alarm("websocket-execution-errors", "AWS/ApiGateway", "ExecutionError", websocket, threshold=0,
              description="API Gateway could not run a websocket route's function."),
        Alarm("websocket-integration-errors", "AWS/ApiGateway", "IntegrationError", websocket, threshold=20,
              description="More than 20 websocket route calls answered an error in 5 minutes."),
        Alarm("table-read-throttles", "AWS/DynamoDB", "ReadThrottleEvents", {"TableName": stage.table_name},
              threshold=10, description="DynamoDB throttled more than 10 reads of the table in 5 minutes."),
        Alarm("table-write-throttles", "AWS/DynamoDB", "WriteThrottleEvents", {"TableName": stage.table_name},
              threshold=10, description="DynamoDB throttled more than 10 writes of the table in 5 minutes."),
        Alarm("jobs-failed", NAMESPACE, "JobsFailed", {"Stage": stage.name}, threshold=0,
              description="An export or a customer's erasure failed: its error says why; an erasure left "
                          "failed leaves data that was asked to go."),
    ]
    return found


def alarm_properties(stage, functions: dict[str, str], stream_function_name: str, websocket_api_id: Any,
                     topic: Any) -> list[dict[str, Any]]:
    """Each alarm as PutMetricAlarm's parameters (and AWS::CloudWatch::Alarm's properties)."""
    return [alarm.properties(stage.rest_api_name, topic)  # "<app>-<stage>-<suffix>"
            for alarm in alarms(stage, functions, stream_function_name, websocket_api_id)]


def dashboard_body(stage, functions: dict[str, str], stream_function_name: str, region: str,
                   websocket_api_id: str) -> str:
    """The dashboard: the alarms' figures, then the code's own metrics (EMF).
    `region` and `websocket_api_id` may be ${...} references (CloudFormation Fn::Sub)."""
    def widget(title: str, metrics: list[list[Any]], stat: str = "Sum", period: int = FIVE_MINUTES) -> dict:
        return {"type": "metric", "width": 12, "height": 6,
                "properties": {"title": title, "region": region, "stat": stat, "period": period,
                               "view": "timeSeries", "metrics": metrics}}

    function_names = list(functions.values())
    api = ["ApiName", stage.rest_api_name, "Stage", stage.api_gateway_stage]
    websocket = ["ApiId", websocket_api_id, "Stage", stage.api_gateway_stage]
    ours = ["Stage", stage.name]
    widgets = [
        widget("Fan-out: stream iterator age (ms, max)",
               [["AWS/Lambda", "IteratorAge", "FunctionName", stream_function_name]], stat="Maximum", period=60),
        widget("Records given up (on-failure queue)",
               [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", stage.failure_queue_name]],
               stat="Maximum"),
        widget("Function errors", [["AWS/Lambda", "Errors", "FunctionName", name] for name in function_names]),
        widget("Function throttles", [["AWS/Lambda", "Throttles", "FunctionName", name] for name in function_names]),
        widget("REST API: requests, 4xx, 5xx", [["AWS/ApiGateway", metric, *api]
                                                 for metric in ("Count", "4XXError", "5XXError")]),
        widget("REST API latency (ms)", [["AWS/ApiGateway", "Latency", *api, {"stat": stat}]
                                         for stat in ("p50", "p99")], stat="p99"),
        widget("Websocket API", [["AWS/ApiGateway", metric, *websocket]
                                 for metric in ("ConnectCount", "MessageCount", "ExecutionError", "IntegrationError")]),
        widget("Table throttling", [["AWS/DynamoDB", metric, "TableName", stage.table_name]
                                    for metric in ("ReadThrottleEvents", "WriteThrottleEvents")]),
        widget("Messages sent, copies written", [[NAMESPACE, metric, *ours]
                                                 for metric in ("MessagesSent", "CopiesWritten")]),
        widget("Fan-out lag: copy written minus message tm_create (ms)",
               [[NAMESPACE, "FanoutLag", *ours, {"stat": stat}] for stat in ("p50", "p99", "Maximum")], stat="p99"),
        widget("Pushes and bus entries", [[NAMESPACE, metric, *ours]
                                          for metric in ("PushesSent", "PushesGone", "PushesFailed", "BusEntries")]),
        widget("Exports and erasures: failed steps, failed jobs", [[NAMESPACE, metric, *ours]
                                                                   for metric in ("JobStepsFailed", "JobsFailed")]),
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"))
