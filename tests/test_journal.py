"""devtools.journal, in process: moto's table journaled, "killed" half way
through the fan-out, and restored into a new, empty table (what the next
make run does), then the stream work finished from where it stopped."""

import json

import pytest
from moto.dynamodb.models import dynamodb_backends

import app as chat_app
from chalicelib.storage.table import create_table
from devtools import moto_patches
from devtools.journal import CorruptStore, Journal
from devtools.poller import StreamPoller
from devtools.streams import ShardReader, streams_client
from tests.conftest import DYNAMODB, REGION, TABLE
from tests.test_poller import copies_of, send_messages


def backend_of(stream_arn):
    return dynamodb_backends[stream_arn.split(":")[4]][REGION]


def open_journal(directory, stream_arn):
    """What make run does at start: load, restore, compact, journal from now on."""
    journal = Journal(directory, TABLE)
    backend = backend_of(stream_arn)
    with moto_patches.lock():
        state = journal.load()
        journal.restore(backend, state, moto_patches.stream_add())
        journal.open(backend, moto_patches.lock())
        moto_patches.attach_journal(journal)
    return journal, state


def poller_for(stream_arn, journal, batch_size=100):
    reader = ShardReader(streams_client(REGION, None), stream_arn, start="TRIM_HORIZON")
    return StreamPoller(reader, chat_app.on_table_change, stream_arn, REGION, batch_size=batch_size,
                        idle_seconds=0, on_handled=journal.handled)


def items(stream_arn):
    table = backend_of(stream_arn).tables[TABLE]
    return {(i.hash_key.value, i.range_key.value): i.to_json()["Attributes"] for i in table.all_items()}


def a_new_process(stream_arn, journal):
    """The process dies (nothing more is written) and the next one starts with an empty table."""
    moto_patches.attach_journal(None)
    journal.close()
    DYNAMODB.delete_table(TableName=TABLE)
    return create_table(DYNAMODB, TABLE)


@pytest.fixture
def journal_dir(aws, tmp_path):
    yield tmp_path
    moto_patches.attach_journal(None)


def test_a_restart_restores_the_table_and_finishes_the_fan_out_once(aws, journal_dir, customer, make_agent):
    journal, state = open_journal(journal_dir, aws)
    assert state.pending == {} and state.items == {}
    agents, ids = send_messages(customer, make_agent, 6)
    poller = poller_for(aws, journal, batch_size=4)
    poller.poll_once()
    poller.poll_once()  # part of the stream handled (and checkpointed), the rest not
    before = items(aws)
    assert 0 < journal.unhandled

    stream_arn = a_new_process(aws, journal)
    assert items(stream_arn) == {}
    journal, state = open_journal(journal_dir, stream_arn)
    assert items(stream_arn) == before, "the table is not as it was"
    assert len(state.pending) == journal.unhandled > 0

    poller = poller_for(stream_arn, journal)
    for _ in range(20):
        if not poller.poll_once():
            break
    for agent in agents:
        assert copies_of(agent) == sorted(ids)  # every copy, none twice
    assert journal.unhandled == 0
    after = items(stream_arn)

    # And once more: nothing left to do, the same table.
    stream_arn = a_new_process(stream_arn, journal)
    journal, state = open_journal(journal_dir, stream_arn)
    assert state.pending == {} and items(stream_arn) == after
    journal.close()


def test_a_transaction_is_one_journal_line(aws, journal_dir, customer, make_agent):
    journal, _ = open_journal(journal_dir, aws)
    a, b, c = make_agent(), make_agent(), make_agent()
    response = customer.post("/v1.0/chats", {"type": "group", "owner_id": a.id, "participant_ids": [a.id, b.id, c.id]})
    assert response.status_code == 200
    lines = (journal_dir / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 1 and len(json.loads(lines[0])["r"]) == 8  # the chat, its status, 3 chatrooms, 3 members
    journal.close()


def test_a_torn_last_line_is_discarded_and_a_corrupt_one_refused(aws, journal_dir, customer, make_agent):
    journal, _ = open_journal(journal_dir, aws)
    send_messages(customer, make_agent, 2)
    journal.close()
    moto_patches.attach_journal(None)
    path = journal_dir / "journal.jsonl"
    whole = path.read_bytes()
    expected = Journal(journal_dir, TABLE).load().items

    path.write_bytes(whole + b'{"c": 99, "r": [{"t": "ch')  # a write cut short by a power loss
    state = Journal(journal_dir, TABLE).load()
    assert state.torn == 1 and state.items == expected

    path.write_bytes(b'{"c": 1, "r": [\n' + whole)
    with pytest.raises(CorruptStore):
        Journal(journal_dir, TABLE).load()


def test_compaction_keeps_everything_and_empties_the_journal(aws, journal_dir, customer, make_agent):
    journal, _ = open_journal(journal_dir, aws)
    send_messages(customer, make_agent, 3)
    expected = Journal(journal_dir, TABLE).load()
    journal.compact()
    assert (journal_dir / "journal.jsonl").stat().st_size == 0
    send_messages(customer, make_agent, 1)  # journaled after the snapshot
    journal.close()
    compacted = Journal(journal_dir, TABLE).load()
    # every item is kept; the send limits' counter of the window moved with the later send
    assert compacted.items[TABLE].keys() >= expected.items[TABLE].keys()
    assert {k: v for k, v in compacted.items[TABLE].items() if "#send-window#" not in k} \
        .items() >= {k: v for k, v in expected.items[TABLE].items() if "#send-window#" not in k}.items()
    assert len(compacted.items[TABLE]) > len(expected.items[TABLE])
    assert set(compacted.pending) >= set(expected.pending)
