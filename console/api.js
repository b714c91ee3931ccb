// The REST API and the websocket, as a page on another origin uses them:
// the token in the Authorization header (never a cookie), JSON bodies, and
// the API's {"Code", "Message"} errors read from the answer (CORS lets the
// page read error answers too).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(base, token) {
    this.base = base.replace(/\/$/, "");
    this.token = token;
  }

  async call(method, path, body, headers = {}) {
    const init = { method, headers: { Authorization: `Bearer ${this.token}`, ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const answer = await fetch(this.base + path, init);
    const text = await answer.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { Code: "NotJson", Message: text.slice(0, 200) }; }
    if (!answer.ok) {
      throw new ApiError(answer.status, data?.Code ?? String(answer.status), data?.Message ?? answer.statusText);
    }
    return data;
  }

  inbox(pageToken = "") {
    const token = pageToken ? `&page_token=${encodeURIComponent(pageToken)}` : "";
    return this.call("GET", `/chatrooms?order=activity&page_size=100${token}`);
  }

  messages(chatroomId, pageToken = "", pageSize = 30) {
    const token = pageToken ? `&page_token=${encodeURIComponent(pageToken)}` : "";
    return this.call("GET", `/chatroommessages?chatroom_id=${chatroomId}&page_size=${pageSize}${token}`);
  }

  thread(chatId, parentId) {
    return this.call("GET", `/chatmessages?chat_id=${chatId}&parent_id=${parentId}&page_size=100`);
  }

  send(chatId, text, { medias = [], parentId = null } = {}) {
    const body = { chat_id: chatId, text, medias };
    if (parentId) body.parent_id = parentId;
    // A retried send (a lost answer) is not sent twice.
    return this.call("POST", "/chatmessages", body, { "Idempotency-Key": crypto.randomUUID() });
  }

  edit(messageId, text, medias) { return this.call("PUT", `/chatmessages/${messageId}`, { text, medias }); }
  remove(messageId) { return this.call("DELETE", `/chatmessages/${messageId}`); }
  react(messageId, emoji) { return this.call("POST", `/chatmessages/${messageId}/reactions`, { emoji }); }
  unreact(messageId, emoji) {
    return this.call("DELETE", `/chatmessages/${messageId}/reactions/${encodeURIComponent(emoji)}`);
  }
  markRead(chatroomId) { return this.call("POST", `/chatrooms/${chatroomId}/read`, {}); }
  createChat(body) { return this.call("POST", "/chats", body); }
  file(fileId) { return this.call("GET", `/files/${fileId}`); }

  // POST /files, then the file straight to the bucket with the presigned
  // POST (every field as given, the file last): the id to send as a media.
  async upload(file) {
    const record = await this.call("POST", "/files", {
      name: file.name, content_type: file.type || "application/octet-stream", size: file.size,
    });
    const form = new FormData();
    for (const [name, value] of Object.entries(record.upload.fields)) form.append(name, value);
    form.append("file", file);
    const answer = await fetch(record.upload.url, { method: "POST", body: form });
    if (!answer.ok) throw new ApiError(answer.status, "UploadFailed", (await answer.text()).slice(0, 300));
    return record.id;
  }
}

// The websocket: events pushed as {"type", "data"}; reconnects with a growing
// wait and calls onOpen again, so the page catches up by listing.
export class Events {
  constructor(url, token, { onEvent, onOpen, onState }) {
    this.url = `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
    this.handlers = { onEvent, onOpen, onState };
    this.wait = 500;
    this.closed = false;
    this.connect();
  }

  connect() {
    this.handlers.onState("connecting");
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.wait = 500;
      // API Gateway closes a connection idle for 10 minutes.
      clearInterval(this.keepAlive);
      this.keepAlive = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), 5 * 60 * 1000);
      this.handlers.onState("live");
      this.handlers.onOpen();
    };
    socket.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      if (event && event.type && event.type !== "pong") this.handlers.onEvent(event);
    };
    socket.onclose = () => {
      clearInterval(this.keepAlive);
      if (this.closed) return;
      this.handlers.onState("reconnecting");
      setTimeout(() => this.connect(), this.wait);
      this.wait = Math.min(this.wait * 2, 10000);
    };
  }

  close() {
    this.closed = true;
    this.socket?.close();
  }
}
