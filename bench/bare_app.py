"""The yardstick of measurement 4: a bare Chalice app that imports boto3 and
answers GET /v1.0/chats/{chat_id} with one GetItem (the same call our
service makes for it), and no auth, validation or models."""

import os

import boto3
from chalice import Chalice, Response

app = Chalice(app_name="bare")
TABLE = os.environ["CHAT_TABLE_NAME"]
dynamodb = boto3.client("dynamodb", region_name=os.environ["CHAT_REGION"],
                        endpoint_url=os.environ.get("CHAT_DYNAMODB_ENDPOINT"))


@app.route("/v1.0/chats/{chat_id}")
def get_chat(chat_id):
    customer_id = app.current_request.headers["x-customer-id"]
    key = {"pk": {"S": f"{customer_id}#chat#{chat_id}"}, "sk": {"S": "#"}}
    item = dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")
    if item is None:
        return Response(status_code=404, body={"Code": "NotFoundError", "Message": "not found"})
    return {name: next(iter(value.values())) for name, value in item.items()}
