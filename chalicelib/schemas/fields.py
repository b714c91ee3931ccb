"""The fields each resource shows, in order (the seed's, then ours), as plain
tuples: answering a request renders with these and never imports pydantic,
which is a third of a cold start. They are the fields of the pydantic models
in resources.py (the OpenAPI document's source); tests/test_openapi.py keeps
the two the same."""

FIELDS: dict[str, tuple[str, ...]] = {
    "Chat": ("id", "customer_id", "type", "owner_id", "participant_ids", "name", "detail", "tm_create", "tm_update",
             "tm_delete"),
    "Chatroom": ("id", "customer_id", "type", "chat_id", "owner_id", "participant_ids", "name", "detail", "tm_create",
                 "tm_update", "tm_delete", "unread_count", "tm_read", "tm_activity", "last_chatroommessage",
                 "mention_count"),
    "Chatmessage": ("id", "customer_id", "chat_id", "source", "type", "text", "medias", "tm_create", "tm_update",
                    "tm_delete", "metadata", "parent_id", "reply_count", "mentions"),
    "Chatroommessage": ("id", "customer_id", "chatroom_id", "messagechat_id", "source", "type", "text", "medias",
                        "tm_create", "tm_update", "tm_delete", "owner_type", "owner_id", "metadata", "parent_id",
                        "mentions"),
    "ChatmessageVersion": ("text", "medias", "tm_update"),
    "Presence": ("agent_id", "status", "online", "tm_update"),
    "PresenceList": ("result",),
    "Receipt": ("agent_id", "tm_read"),
    "Reaction": ("emoji", "owner_type", "owner_id", "tm_create"),
    "File": ("id", "customer_id", "owner_id", "name", "content_type", "size", "status", "upload", "download_url",
             "tm_create", "tm_update", "tm_delete", "owner_type"),
    "Transcript": ("chat_id", "format", "result", "text", "next_page_token"),
    "CustomerSettings": ("customer_id", "retention_days", "purge_deleted_after_days", "tm_update"),
    "Export": ("id", "customer_id", "status", "progress", "size", "download_url", "error", "tm_create", "tm_update",
               "tm_done"),
    "Erasure": ("customer_id", "status", "phase", "items_deleted", "files_deleted", "error", "tm_create",
                "tm_update", "tm_done"),
}
