"""Files against the `make run` server: the upload URL the API hands out is the
embedded moto server on loopback, a real multipart POST (what `curl -F` sends)
stores the file there, the download URL serves it, and a restart on the same
data directory keeps it (devtools/filestore.py)."""

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests

from devtools import filestore
from tests.conftest import BUCKET
from tests.local_server import ROOT, LocalServer, eventually
from tests.test_local_readme import ADDRESS, tutorial

README_SECTION = "### Files, locally"

CONTENT = b"%PDF-1.4\n" + bytes(range(256)) * 40


def upload(file, content=CONTENT):
    """A multipart/form-data POST of the upload's fields, then the file (as a browser or curl -F does)."""
    upload = file["upload"]
    parts = [(name, (None, value)) for name, value in upload["fields"].items()] + [("file", ("report.pdf", content))]
    return requests.post(upload["url"], files=parts, timeout=15)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_round_trip_through_the_local_server_and_a_restart(data_dir):
    customer_id, alice, bob = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with LocalServer(data_dir=data_dir) as server:
        customer, as_alice, as_bob = (server.api(customer_id), server.api(customer_id, alice, "alice"),
                                      server.api(customer_id, bob, "bob"))
        status, chat = customer.call("POST", "/chats", {"type": "normal", "owner_id": alice,
                                                        "participant_ids": [alice, bob]})
        assert status == 200, chat
        status, file = as_alice.call("POST", "/files", {"name": "report.pdf", "content_type": "application/pdf",
                                                        "size": len(CONTENT)})
        assert status == 200, file
        url = urlsplit(file["upload"]["url"])
        assert url.scheme == "http" and url.hostname == "127.0.0.1", file["upload"]["url"]

        assert upload(file).status_code == 204
        status, message = as_alice.call("POST", "/chatmessages", {
            "chat_id": chat["id"], "text": "the report", "medias": [{"type": "file", "file_id": file["id"]}]})
        assert status == 200, message
        status, got = as_bob.call("GET", f"/files/{file['id']}")
        assert status == 200 and got["status"] == "uploaded", got
        download = requests.get(got["download_url"], timeout=15)
        assert download.status_code == 200 and download.content == CONTENT
        assert download.headers["Content-Type"] == "application/pdf"
        sent_key = unquote(urlsplit(got["download_url"]).path).split("/", 2)[2]  # path style: /bucket/key
        assert sent_key.startswith(f"{customer_id}/") and sent_key != f"{customer_id}/{file['id']}"
        assert (Path(data_dir) / "files" / sent_key).read_bytes() == CONTENT, "the copy made at the send is kept"
        assert not (Path(data_dir) / "files" / customer_id / file["id"]).exists(), "the upload is removed"
        assert upload(file, CONTENT[::-1]).status_code == 204  # the form again, within its 15 minutes
        assert requests.get(got["download_url"], timeout=15).content == CONTENT, "changes nothing downloaded"

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=15) == 0, server.output()

    with LocalServer(data_dir=data_dir) as server:
        as_bob = server.api(customer_id, bob, "bob")
        status, got = as_bob.call("GET", f"/files/{file['id']}")
        assert status == 200, got
        assert requests.get(got["download_url"], timeout=15).content == CONTENT, "kept across the restart"
        status, deleted = server.api(customer_id, alice, "alice").call("DELETE", f"/files/{file['id']}")
        assert status == 200 and deleted["status"] == "deleted", deleted
        assert requests.get(got["download_url"], timeout=15).status_code in (403, 404)  # gone
        assert not (Path(data_dir) / "files" / customer_id / file["id"]).exists()
        assert not (Path(data_dir) / "files" / sent_key).exists()


def test_a_wrong_upload_is_refused_at_send_and_removed(data_dir):
    customer_id, alice = str(uuid.uuid4()), str(uuid.uuid4())
    with LocalServer(data_dir=data_dir) as server:
        as_alice = server.api(customer_id, alice, "alice")
        status, room = as_alice.call("POST", "/chatrooms", {"participant_ids": [str(uuid.uuid4())]})
        assert status == 200, room
        status, file = as_alice.call("POST", "/files", {"name": "a.pdf", "content_type": "application/pdf",
                                                        "size": len(CONTENT)})
        assert status == 200, file
        assert upload(file, CONTENT + b"!").status_code == 204  # moto does not enforce the policy; S3 would refuse
        status, error = as_alice.call("POST", "/chatroommessages", {
            "chatroom_id": room["id"], "medias": [{"type": "file", "file_id": file["id"]}]})
        assert status == 400 and error["Message"].startswith("medias[0].file_id:"), error
        assert not (Path(data_dir) / "files" / customer_id / file["id"]).exists()
        status, deleted = as_alice.call("DELETE", f"/files/{file['id']}")  # nothing stored: still a delete
        assert status == 200 and deleted["status"] == "deleted", deleted


def test_the_store_restores_what_it_kept_and_skips_what_a_crash_cut_short(bucket, tmp_path):
    store = filestore.FileStore(tmp_path, BUCKET)
    kept, torn = f"{uuid.uuid4()}/{uuid.uuid4()}", f"{uuid.uuid4()}/{uuid.uuid4()}"
    store.save(kept, CONTENT, "application/pdf", {"upload": "attached"})
    store.save(torn, b"half", "image/png", {})
    (tmp_path / f"{torn}.json").write_text('{"content_')  # its description cut short
    (tmp_path / kept.split("/")[0] / ".tmp-abc").write_bytes(b"a write cut short")
    store.save("../outside", b"x", "text/plain", {})  # not a key the service makes: not kept

    assert store.restore(bucket) == 1
    got = bucket.get_object(Bucket=BUCKET, Key=kept)
    assert got["Body"].read() == CONTENT and got["ContentType"] == "application/pdf"
    assert bucket.get_object_tagging(Bucket=BUCKET, Key=kept)["TagSet"] == [{"Key": "upload", "Value": "attached"}]
    assert not (tmp_path / kept.split("/")[0] / ".tmp-abc").exists()
    assert not (tmp_path.parent / "outside").exists()
    store.remove(kept)
    store.remove(f"{uuid.uuid4()}/{uuid.uuid4()}")  # never stored
    assert not (tmp_path / kept).exists()


def test_the_readme_files_section_runs_as_written(tmp_path):
    script = tutorial(README_SECTION)
    assert script.count(ADDRESS) == 1 and "curl" in script and "-F " in script
    with LocalServer(secret=None, data_dir=tmp_path / "data") as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "AWS_"))}
        env["CHAT_DATA_DIR"] = str(server.data_dir)
        for attempt in range(2):  # it cleans up after itself
            done = subprocess.run(["bash", "-eu", "-o", "pipefail", "-c",
                                   script.replace(ADDRESS, f"127.0.0.1:{server.port}")],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
            output = done.stdout + done.stderr
            assert done.returncode == 0, f"run {attempt + 1}:\n{output}"
            assert '"Code"' not in output, f"run {attempt + 1}: an error response:\n{output}"
            uploaded, message, content, deleted, chat = done.stdout.splitlines()
            assert uploaded == "204", output
            assert json.loads(message)["medias"][0]["type"] == "file"
            assert content == "Hello from a file."
            assert json.loads(deleted)["status"] == "deleted"
            assert json.loads(chat)["name"] == "files tutorial"


def test_an_export_and_an_erasure_run_in_make_run(data_dir):
    """The jobs run in make run's stream poller: the archive is kept in the data
    directory and downloads from the embedded bucket; the erasure takes the
    customer's items and files."""
    import gzip

    customer_id, alice, bob = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with LocalServer(data_dir=data_dir) as server:
        customer, as_alice = server.api(customer_id), server.api(customer_id, alice, "alice")
        status, chat = customer.call("POST", "/chats", {"type": "normal", "owner_id": alice,
                                                        "participant_ids": [alice, bob]})
        assert status == 200, chat
        status, file = as_alice.call("POST", "/files", {"name": "report.pdf", "content_type": "application/pdf",
                                                        "size": len(CONTENT)})
        assert status == 200 and upload(file).status_code == 204, file
        status, message = as_alice.call("POST", "/chatmessages", {
            "chat_id": chat["id"], "text": "the report", "medias": [{"type": "file", "file_id": file["id"]}]})
        assert status == 200, message

        status, started = customer.call("POST", "/exports")
        assert status == 202, started

        def finished(path):
            status, shown = customer.call("GET", path)
            return shown if status == 200 and shown["status"] != "running" else None

        done = eventually(lambda: finished(f"/exports/{started['id']}"))
        assert done and done["status"] == "done", done
        lines = [json.loads(line) for line in gzip.decompress(requests.get(done["download_url"], timeout=15).content)
                 .decode().splitlines()]
        ids = {(line["type"], line["data"]["id"]) for line in lines[1:]}
        assert {("chat", chat["id"]), ("chatmessage", message["id"]), ("file", file["id"])} <= ids
        assert (Path(data_dir) / "files" / customer_id / started["id"]).exists(), "the archive is kept"

        status, erasure = customer.call("DELETE", "/customer/data", headers={"Confirm-Customer-Id": customer_id})
        assert status == 202, erasure
        erased = eventually(lambda: finished("/customer/data"))
        assert erased and erased["items_deleted"] > 5 and erased["files_deleted"] >= 2, erased
        assert customer.call("GET", f"/chats/{chat['id']}")[0] == 404
        assert list((Path(data_dir) / "files").glob(f"{customer_id}/*")) == []
