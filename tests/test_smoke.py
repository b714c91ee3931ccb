def test_smoke(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    r = customer.post("/v1.0/chats", {"type": "normal", "owner_id": a.id, "participant_ids": [b.id, a.id]})
    assert r.status_code == 200, r.body
    room = a.get("/v1.0/chatrooms").json_body["result"][0]
    assert a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "hi"}).status_code == 200
    fanout.drain()
    broom = b.get("/v1.0/chatrooms").json_body["result"][0]
    assert len(b.get(f"/v1.0/chatroommessages?chatroom_id={broom['id']}").json_body["result"]) == 1
