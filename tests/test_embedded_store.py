"""make run's embedded DynamoDB (devtools/run.py, devtools/moto_patches.py)
keeps moto's answers while it is made faster: keep-alive connections, items
sized once, parsed conditions cached, AttributeValues taken as they are on
both sides of the wire. Those speed-ups are process-wide, and the rest of
the suite keeps moto as it is, so each check runs in a Python of its own."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SETUP = """
import boto3, botocore.exceptions
from devtools.run import start_embedded_dynamodb

server, url = start_embedded_dynamodb()
client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
client.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST")

def refused(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    return None
"""


def run(body: str) -> str:
    script = SETUP + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_one_connection_serves_many_requests():
    out = run("""
        import urllib3.connection
        made = []
        new_conn = urllib3.connection.HTTPConnection._new_conn
        urllib3.connection.HTTPConnection._new_conn = lambda self: made.append(1) or new_conn(self)
        for n in range(30):
            client.put_item(TableName="t", Item={"pk": {"S": str(n)}, "body": {"S": "x" * 5000}})
        assert refused(client.get_item, TableName="missing", Key={"pk": {"S": "1"}}) == "ResourceNotFoundException"
        got = [client.get_item(TableName="t", Key={"pk": {"S": str(n)}})["Item"]["body"]["S"] for n in range(30)]
        assert got == ["x" * 5000] * 30
        print("connections", len(made))
    """)
    assert "connections 0" in out or "connections 1" in out, out


def test_cached_conditions_answer_as_moto_does_for_each_value():
    run("""
        for n, t in enumerate(["2026-01-01", "2026-02-01", "2026-03-01"]):
            client.put_item(TableName="t", Item={"pk": {"S": f"room{n}"}, "tm": {"S": t}, "unread": {"N": "0"}})
        # the same expression, a value that differs: each answered by its own value
        def bump(pk, t, extra):
            return refused(client.update_item, TableName="t", Key={"pk": {"S": pk}},
                           UpdateExpression="SET #x = :x ADD #u :one",
                           ConditionExpression="#tm < :t",
                           ExpressionAttributeNames={"#tm": "tm", "#u": "unread", "#x": "x"},
                           ExpressionAttributeValues={":t": {"S": t}, ":one": {"N": "1"}, ":x": {"S": extra}})
        assert bump("room0", "2026-02-15", "a") is None
        assert bump("room1", "2026-02-15", "b") is None
        assert bump("room2", "2026-02-15", "c") == "ConditionalCheckFailedException"
        assert bump("room2", "2026-04-01", "d") is None
        assert bump("room0", "2025-12-31", "e") == "ConditionalCheckFailedException"
        units = [client.get_item(TableName="t", Key={"pk": {"S": f"room{n}"}})["Item"]["unread"]["N"] for n in range(3)]
        assert units == ["1", "1", "1"], units
        # a transaction's conditions too, the same expression with other values
        def put_if_older(pk, t):
            return refused(client.transact_write_items, TransactItems=[
                {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": pk}}, "ConditionExpression": "#tm < :t",
                                    "ExpressionAttributeNames": {"#tm": "tm"},
                                    "ExpressionAttributeValues": {":t": {"S": t}}}},
                {"Put": {"TableName": "t", "Item": {"pk": {"S": pk + "-copy"}}}}])
        assert put_if_older("room1", "2026-01-15") == "TransactionCanceledException"
        assert put_if_older("room1", "2026-03-15") is None
        assert "Item" in client.get_item(TableName="t", Key={"pk": {"S": "room1-copy"}})
        assert "Item" not in client.get_item(TableName="t", Key={"pk": {"S": "room0-copy"}})
    """)


def test_values_keep_their_types_and_items_keep_their_limit():
    run("""
        item = {"pk": {"S": "v"}, "n": {"N": "12.50"}, "b": {"B": b"\\x00\\xff"}, "t": {"BOOL": True},
                "z": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "m": {"M": {"l": {"L": [{"S": "x"}, {"B": b"y"}]}}}}
        client.put_item(TableName="t", Item=item)
        got = client.get_item(TableName="t", Key={"pk": {"S": "v"}})["Item"]
        assert got["b"] == {"B": b"\\x00\\xff"} and got["m"]["M"]["l"]["L"][1] == {"B": b"y"}, got
        assert got["n"] == {"N": "12.50"} and got["t"] == {"BOOL": True} and got["z"] == {"NULL": True}
        assert sorted(got["ss"]["SS"]) == ["a", "b"]
        client.put_item(TableName="t", Item={"pk": {"S": "big"}, "x": {"S": "y" * 400000}})
        assert refused(client.put_item, TableName="t",
                       Item={"pk": {"S": "bigger"}, "x": {"S": "y" * 300000}, "z": {"S": "y" * 110000}}
                       ) == "ValidationException"
        assert "Item" not in client.get_item(TableName="t", Key={"pk": {"S": "bigger"}})
    """)
