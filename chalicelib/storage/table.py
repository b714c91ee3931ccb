"""The one table: its definition (shared by tests, the local runner and the
deployment template) and the function that creates it."""

from typing import Any

LIST_INDEX = "list_index"          # gsi1: newest-first pages (sort key "tm_create~id")
RELATION_INDEX = "relation_index"  # gsi2: children of a parent (chatrooms of a chat, copies of a message)
ORDER_INDEX = "order_index"        # gsi3: other orders (an agent's chatrooms by activity, a thread's replies)
TTL_ATTRIBUTE = "expires_at"
# What the relation index carries besides the keys: enough to name and
# address a child, not its content. A chatroom of a 1,000-agent group holds
# 37 KB of participant ids; projecting them would make the fan-out read the
# whole group 1,000 times over to learn two ids per chatroom.
RELATION_ATTRIBUTES = ("kind", "id", "customer_id", "owner_id", "chat_version", "tm_create", "tm_delete")


def table_definition(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable, on-demand billing, stream on."""

    def gsi(name: str, pk: str, sk: str, projection: dict[str, Any]) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": pk, "KeyType": "HASH"},
                {"AttributeName": sk, "KeyType": "RANGE"},
            ],
            "Projection": projection,
        }

    return {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            gsi(LIST_INDEX, "gsi1pk", "gsi1sk", {"ProjectionType": "ALL"}),
            gsi(RELATION_INDEX, "gsi2pk", "gsi2sk",
                {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(RELATION_ATTRIBUTES)}),
            gsi(ORDER_INDEX, "gsi3pk", "gsi3sk", {"ProjectionType": "ALL"}),
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def create_table(client: Any, table_name: str) -> str:
    """Create the table (if missing) and return its stream ARN."""
    try:
        description = client.describe_table(TableName=table_name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        description = client.create_table(**table_definition(table_name))["TableDescription"]
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1})
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    return description["LatestStreamArn"]
