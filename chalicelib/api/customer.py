"""/v1.0/customer routes: the customer's data-lifecycle settings."""

from chalice import Blueprint

from chalicelib.api.routing import Router, Service

lifecycle = Service("chalicelib.services.lifecycle")
bp = Blueprint(__name__)
route = Router(bp)


@route("GET", "/customer/settings", "The customer's data-lifecycle settings (retention, purge of deleted content)",
       returns="CustomerSettings", errors=(401, 403))
def get_settings(caller):
    return lifecycle.get_settings(caller)


@route("PUT", "/customer/settings", "Change the customer's data-lifecycle settings", body="CustomerSettingsUpdate",
       returns="CustomerSettings", errors=(400, 401, 403, 413),
       description="`retention_days` (0 to 3650, 0 keeps forever): messages, their copies and history expire "
                   "that many days after they were sent. `purge_deleted_after_days` (1 to 365, default 30): a "
                   "deleted message's text, medias, history and reactions are removed that many days after the "
                   "delete. A change applies to messages sent after it at once, and to older ones through a "
                   "background pass.")
def put_settings(caller, body):
    return lifecycle.put_settings(caller, body)
