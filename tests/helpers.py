"""Small steps the HTTP tests share."""


def create_chat(caller, *agents, name="", detail=""):
    """POST /v1.0/chats with `agents` (the first owns it): normal for two, group above."""
    body = {
        "type": "normal" if len(agents) == 2 else "group",
        "owner_id": agents[0].id,
        "participant_ids": [agent.id for agent in agents],
        "name": name,
        "detail": detail,
    }
    response = caller.post("/v1.0/chats", body)
    assert response.status_code == 200, response.body
    return response.json_body
