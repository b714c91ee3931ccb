// The reference agent console: an agent's inbox, one chat at a time, a thread
// beside it, everything kept current by the websocket's events. Plain DOM, no
// framework: each render function rebuilds one part from `state`.
import { Api, ApiError, Events } from "./api.js";

const $ = (id) => document.getElementById(id);
const LIVE = "9999-01-01 00:00:00.000000"; // tm_delete of what is not deleted
const PAGE = 30;
const TOKEN_KEY = "console-token"; // per tab (sessionStorage): two tabs may be two agents

const state = {
  config: null, api: null, events: null, me: null,
  names: new Map(), // agent id -> name (the demo list locally, and senders seen)
  rooms: new Map(), // chatroom id -> chatroom
  open: null, // {room, copies: Map(copy id -> copy), older: next_page_token}
  thread: null, // {parent: chatmessage, replies: Map(id -> chatmessage)}
  editing: null, // {id, medias}: the chatmessage being edited
  marking: false, // a mark-read in flight
};

function notify(error) {
  const text = error instanceof ApiError ? error.message : String(error?.message ?? error);
  $("notice").textContent = text;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { $("notice").textContent = ""; }, 6000);
}

function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

function nameOf(agentId) {
  if (agentId === state.me?.id) return `${state.me.name || "me"} (you)`;
  return state.names.get(agentId) || agentId.slice(0, 8);
}

function senderName(source) {
  return source?.name || source?.target_name || nameOf(source?.target || "");
}

function roomTitle(room) {
  if (room.name) return room.name;
  const others = room.participant_ids.filter((id) => id !== state.me.id);
  return others.map(nameOf).join(", ") || "(just you)";
}

// ---- sign in ---------------------------------------------------------------------------

async function start() {
  state.config = await (await fetch("config.json", { cache: "no-store" })).json();
  const agents = state.config.demo?.agents ?? [];
  for (const agent of agents) state.names.set(agent.id, agent.name);
  if (agents.length) {
    $("demo").hidden = false;
    $("demo-agents").replaceChildren(...agents.map((agent) => element("li", {},
      element("button", { type: "button", "data-agent": agent.name, onclick: () => signIn(agent.token) },
        `Sign in as ${agent.name}`))));
    $("known-agents").replaceChildren(...agents.map((agent) => element("option", { value: agent.id, label: agent.name })));
  }
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token-input").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept) signIn(kept);
  else showSignIn();
}

function showSignIn() {
  $("sign-in").hidden = false;
  $("console").hidden = true;
  $("sign-out").hidden = true;
  $("whoami").textContent = "";
}

function signIn(token) {
  const claims = tokenClaims(token);
  if (!claims?.agent) {
    notify("Not an agent token: the console signs in agents (a token with an `agent` claim).");
    return showSignIn();
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.me = { id: claims.agent.id, name: claims.agent.name };
  state.api = new Api(state.config.api, token);
  $("whoami").textContent = `Signed in as ${state.me.name || state.me.id}`;
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  state.events = new Events(state.config.websocket, token, {
    onEvent: (event) => handleEvent(event).catch(notify),
    onOpen: () => catchUp().catch(notify),
    onState: (text) => {
      $("connection").textContent = text;
      $("connection").classList.toggle("live", text === "live");
    },
  });
  loadInbox().catch(notify);
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.events?.close();
  Object.assign(state, { api: null, events: null, me: null, open: null, thread: null, editing: null });
  state.rooms.clear();
  $("connection").textContent = "offline";
  showSignIn();
}

// ---- inbox -----------------------------------------------------------------------------

async function loadInbox() {
  const page = await state.api.inbox();
  state.rooms.clear();
  for (const room of page.result) if (room.tm_delete === LIVE) state.rooms.set(room.id, room);
  renderInbox();
}

function renderInbox() {
  const rooms = [...state.rooms.values()].sort((a, b) => (b.tm_activity > a.tm_activity ? 1 : -1));
  $("inbox").replaceChildren(...rooms.map((room) => {
    const unread = room.unread_count ?? 0;
    const preview = room.last_chatroommessage;
    const previewText = preview ? `${senderName(preview.source)}: ${preview.text || "(attachment)"}` : "No messages yet";
    return element("li", { "data-chatroom-id": room.id },
      element("button", {
        type: "button", "aria-current": String(state.open?.room.id === room.id),
        "aria-label": `${roomTitle(room)}, ${unread} unread. ${previewText}`, onclick: () => openRoom(room.id),
      },
      element("span", { className: "name" }, roomTitle(room)),
      element("span", { className: "unread", "data-count": String(unread) }, String(unread)),
      element("span", { className: "preview" }, previewText)));
  }));
}

// A chatroom from an event: a whole chatroom, or only its read state keyed by
// chatroom_id (merged into the one we have; an unknown one is listed anew).
function upsertRoom(data) {
  const id = data.chatroom_id ?? data.id;
  const known = state.rooms.get(id);
  if (data.tm_delete && data.tm_delete !== LIVE) {
    state.rooms.delete(id);
    if (state.open?.room.id === id) closeRoom();
  } else if (known) {
    const { chatroom_id: keyed, ...fields } = data;
    if (keyed !== undefined) delete fields.id; // a read-state payload: its fields only
    Object.assign(known, fields);
  } else if (data.participant_ids) {
    state.rooms.set(id, data);
  } else {
    return loadInbox();
  }
  renderInbox();
  if (state.open?.room.id === id) {
    renderChatHeader();
    markRead().catch(notify); // the open chat is on view: what arrived in it is read
  }
  return null;
}

$("new-chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const byName = new Map([...state.names].map(([id, name]) => [name, id]));
  const others = $("new-chat-participants").value.split(",").map((entry) => entry.trim()).filter(Boolean)
    .map((entry) => byName.get(entry) ?? entry); // a known agent's name, or an id
  const participants = [...new Set([state.me.id, ...others])];
  try {
    await state.api.createChat({
      type: participants.length === 2 ? "normal" : "group", owner_id: state.me.id,
      participant_ids: participants, name: $("new-chat-name").value.trim(),
    });
    event.target.reset();
    await loadInbox();
  } catch (error) {
    notify(error);
  }
});

// ---- one chat --------------------------------------------------------------------------

async function openRoom(roomId) {
  const room = state.rooms.get(roomId);
  if (!room) return;
  state.open = { room, copies: new Map(), older: "" };
  cancelEdit();
  closeThread();
  renderChatHeader();
  renderInbox();
  $("composer").hidden = false;
  const page = await state.api.messages(room.id, "", PAGE);
  if (state.open?.room !== room) return;
  addCopies(page.result);
  state.open.older = page.next_page_token;
  renderMessages(true);
  await markRead();
  $("message-input").focus();
}

function closeRoom() {
  state.open = null;
  $("chat-title").textContent = "No chat open";
  $("messages").replaceChildren();
  $("composer").hidden = true;
  $("load-older").hidden = true;
  closeThread();
}

function renderChatHeader() {
  const room = state.open.room;
  $("chat-title").textContent = roomTitle(room);
}

async function markRead() {
  const room = state.open?.room;
  if (!room || state.marking || document.visibilityState !== "visible" || !(room.unread_count > 0)) return;
  state.marking = true;
  try {
    upsertRoom(await state.api.markRead(room.id));
  } finally {
    state.marking = false;
  }
}

function addCopies(copies) {
  for (const copy of copies) {
    state.open.copies.set(copy.id, copy);
    if (copy.source?.target && copy.source?.name) state.names.set(copy.source.target, copy.source.name);
  }
}

$("load-older").addEventListener("click", async () => {
  const open = state.open;
  try {
    const page = await state.api.messages(open.room.id, open.older, PAGE);
    if (state.open !== open) return;
    addCopies(page.result);
    open.older = page.next_page_token;
    renderMessages(false);
  } catch (error) {
    notify(error);
  }
});

function renderMessages(scrollToEnd) {
  const open = state.open;
  const copies = [...open.copies.values()].sort((a, b) => (a.tm_create > b.tm_create ? 1 : -1));
  const list = $("messages");
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...copies.map((copy) => messageItem(copy, copy.messagechat_id)));
  $("load-older").hidden = !open.older;
  if (scrollToEnd || atEnd) list.scrollTop = list.scrollHeight;
}

// One message (a chatroom copy, or a chatmessage in a thread); `messageId` is the chatmessage's id.
function messageItem(message, messageId) {
  const deleted = message.tm_delete !== LIVE;
  const mine = message.source?.target === state.me.id;
  const edited = !deleted && message.tm_update !== message.tm_create;
  const reactions = message.metadata?.reactions ?? [];
  const byEmoji = new Map();
  for (const reaction of reactions) byEmoji.set(reaction.emoji, [...(byEmoji.get(reaction.emoji) ?? []), reaction]);
  const item = element("li", {
    className: `message${mine ? " mine" : ""}${deleted ? " deleted" : ""}`,
    "data-id": message.id, "data-message-id": messageId,
  },
  element("div", { className: "meta" }, `${senderName(message.source)} · ${message.tm_create.slice(11, 16)}`,
    edited ? " · edited" : "", message.parent_id ? " · reply in a thread" : ""),
  element("p", { className: "text" }, deleted ? "This message was deleted." : message.text));
  if (!deleted) {
    for (const media of message.medias ?? []) {
      if (media.type === "file") {
        item.append(element("button", {
          type: "button", className: "download", "data-file-id": media.file_id,
          onclick: () => download(media.file_id).catch(notify),
        }, "Download attachment"));
      } else if (media.type === "link" && media.link_url) {
        item.append(element("a", { href: media.link_url, rel: "noopener noreferrer", target: "_blank" }, media.link_url));
      }
    }
    if (byEmoji.size) {
      item.append(element("div", { className: "reactions" }, ...[...byEmoji].map(([emoji, list]) =>
        element("button", {
          type: "button", "data-emoji": emoji, "data-count": String(list.length),
          "aria-pressed": String(list.some((r) => r.owner_id === state.me.id)),
          "aria-label": `${emoji} by ${list.map((r) => nameOf(r.owner_id)).join(", ")}`,
          onclick: () => toggleReaction(messageId, emoji, list).catch(notify),
        }, `${emoji} ${list.length}`))));
    }
    const mineReacted = (byEmoji.get("👍") ?? []).some((r) => r.owner_id === state.me.id);
    const actions = element("div", { className: "actions" },
      element("button", {
        type: "button", className: "react", "aria-pressed": String(mineReacted),
        onclick: () => toggleReaction(messageId, "👍", byEmoji.get("👍") ?? []).catch(notify),
      }, "React 👍"),
      message.parent_id ? null : element("button", {
        type: "button", className: "reply", onclick: () => openThread(messageId).catch(notify),
      }, "Reply in thread"));
    if (mine) {
      actions.append(
        element("button", { type: "button", className: "edit", onclick: () => startEdit(messageId, message) }, "Edit"),
        element("button", {
          type: "button", className: "delete", onclick: () => state.api.remove(messageId).catch(notify),
        }, "Delete"));
    }
    item.append(actions);
  }
  return item;
}

async function toggleReaction(messageId, emoji, reactions) {
  if (reactions.some((reaction) => reaction.owner_id === state.me.id)) await state.api.unreact(messageId, emoji);
  else await state.api.react(messageId, emoji);
}

// The presigned GET answers the file as an attachment: following it downloads it.
async function download(fileId) {
  const file = await state.api.file(fileId);
  if (!file.download_url) throw new Error(`${file.name}: not downloadable (${file.status})`);
  const link = element("a", { href: file.download_url, download: file.name, rel: "noopener" });
  document.body.append(link);
  link.click();
  link.remove();
}

// ---- composing -------------------------------------------------------------------------

function sendOnEnter(textarea, form) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape" && state.editing) {
      cancelEdit();
    }
  });
}
sendOnEnter($("message-input"), $("composer"));
sendOnEnter($("reply-input"), $("reply-form"));

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("message-input");
  const fileInput = $("file-input");
  const text = input.value.trim();
  const file = fileInput.files[0];
  if (!text && !file) return;
  const button = $("send");
  button.disabled = true;
  try {
    if (state.editing) {
      await state.api.edit(state.editing.id, text, state.editing.medias);
      cancelEdit();
    } else {
      const medias = file ? [{ type: "file", file_id: await state.api.upload(file) }] : [];
      await state.api.send(state.open.room.chat_id, text, { medias });
      fileInput.value = "";
    }
    input.value = "";
  } catch (error) {
    notify(error);
  } finally {
    button.disabled = false;
    input.focus();
  }
});

function startEdit(messageId, message) {
  state.editing = { id: messageId, medias: message.medias ?? [] };
  $("editing").hidden = false;
  $("message-input").value = message.text;
  $("message-input").focus();
}

function cancelEdit() {
  state.editing = null;
  $("editing").hidden = true;
  $("message-input").value = "";
}
$("cancel-edit").addEventListener("click", cancelEdit);

// ---- threads ---------------------------------------------------------------------------

async function openThread(parentId) {
  const parent = await state.api.call("GET", `/chatmessages/${parentId}`);
  state.thread = { parent, replies: new Map() };
  const page = await state.api.thread(parent.chat_id, parent.id);
  for (const reply of page.result) state.thread.replies.set(reply.id, reply);
  $("thread").hidden = false;
  renderThread();
  $("reply-input").focus();
}

function closeThread() {
  state.thread = null;
  $("thread").hidden = true;
}
$("close-thread").addEventListener("click", closeThread);

function renderThread() {
  const { parent, replies } = state.thread;
  $("thread-parent").textContent = `${senderName(parent.source)}: ${parent.text}`;
  const sorted = [...replies.values()].sort((a, b) => (a.tm_create > b.tm_create ? 1 : -1));
  $("replies").replaceChildren(...sorted.map((reply) => messageItem(reply, reply.id)));
}

$("reply-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("reply-input").value.trim();
  if (!text || !state.thread) return;
  try {
    const thread = state.thread;
    const reply = await state.api.send(thread.parent.chat_id, text, { parentId: thread.parent.id });
    $("reply-input").value = "";
    if (state.thread === thread) {
      thread.replies.set(reply.id, reply);
      renderThread();
    }
  } catch (error) {
    notify(error);
  }
});

// ---- live events -----------------------------------------------------------------------

async function handleEvent({ type, data }) {
  switch (type) {
    case "chatroom_created":
    case "chatroom_updated":
    case "chatroom_read_state": // the read state alone, keyed by chatroom_id
    case "chatroom_deleted":
      if (data.owner_id === undefined || data.owner_id === state.me.id) await upsertRoom(data);
      break;
    case "messagechatroom_created":
    case "messagechatroom_updated":
    case "messagechatroom_deleted":
      onCopy(type, data);
      break;
    case "messagechat_created":
    case "messagechat_updated":
    case "messagechat_deleted":
      onChatmessage(data);
      break;
    case "chat_updated":
    case "chat_deleted":
      for (const room of state.rooms.values()) {
        if (room.chat_id === data.id) Object.assign(room, { participant_ids: data.participant_ids ?? room.participant_ids });
      }
      if (type === "chat_deleted" || !data.participant_ids?.includes(state.me.id)) await loadInbox();
      else renderInbox();
      break;
    default:
      break;
  }
}

function onCopy(type, copy) {
  const room = state.rooms.get(copy.chatroom_id);
  if (room && type === "messagechatroom_created") {
    room.last_chatroommessage = { id: copy.id, source: copy.source, type: copy.type, text: copy.text, tm_create: copy.tm_create };
    if (copy.tm_create > room.tm_activity) room.tm_activity = copy.tm_create;
    renderInbox();
  }
  if (state.open?.room.id !== copy.chatroom_id) return;
  addCopies([copy]);
  renderMessages(false);
}

function onChatmessage(message) {
  const thread = state.thread;
  if (!thread) return;
  if (message.id === thread.parent.id) {
    thread.parent = message;
  } else if (message.parent_id === thread.parent.id) {
    thread.replies.set(message.id, message);
  } else {
    return;
  }
  renderThread();
}

// After a (re)connect, list what may have been missed while offline.
async function catchUp() {
  await loadInbox();
  const open = state.open;
  if (open) {
    const fresh = state.rooms.get(open.room.id);
    if (!fresh) return closeRoom();
    open.room = fresh;
    const page = await state.api.messages(fresh.id, "", PAGE);
    addCopies(page.result);
    renderMessages(false);
    await markRead();
  }
  if (state.thread) await openThread(state.thread.parent.id);
  return null;
}

// When the page comes back into view, what arrived meanwhile is now read.
document.addEventListener("visibilitychange", () => markRead().catch(notify));

start().catch(notify);
