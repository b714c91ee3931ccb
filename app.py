"""The chat service's Lambda entry points: the REST API, the websocket API and the stream handler."""

from chalicelib import config, storage
from chalicelib.api import chatrooms, chats, customer, files, messages, openapi, presence, service_agents
from chalicelib.api.application import ChatChalice

settings = config.load()
storage.configure(settings)

app = ChatChalice(app_name=settings.app_name)  # voipbin-chat-<stage> once deployed (CHAT_STAGE)
# `chalice package`/`deploy` refuse the websocket handlers below without this opt-in.
app.experimental_feature_flags.update(["WEBSOCKETS"])
for blueprint in (chats.bp, chatrooms.bp, messages.bp, service_agents.bp, files.bp, presence.bp, customer.bp,
                  openapi.bp):
    app.register_blueprint(blueprint, url_prefix="/v1.0")
app.answer_preflights()  # OPTIONS on every path (CORS preflights; chalicelib/api/cors.py)


@app.on_dynamodb_record(stream_arn=settings.stream_arn, batch_size=100)
def on_table_change(event):
    """Copies new messages into chatrooms and runs the cascades (chalicelib.stream)."""
    from chalicelib import stream  # only the stream function needs it

    return stream.handle_records(stream.StreamRecord.from_lambda(record.to_dict()) for record in event)


@app.on_ws_connect()
def ws_connect(event):
    """Accepts a connection with a valid token (chalicelib.websocket)."""
    from chalicelib.websocket import handlers

    return handlers.on_connect(event)


@app.on_ws_message()
def ws_message(event):
    from chalicelib.websocket import handlers

    return handlers.on_message(event)


@app.on_ws_disconnect()
def ws_disconnect(event):
    from chalicelib.websocket import handlers

    return handlers.on_disconnect(event)
