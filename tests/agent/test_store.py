"""The local store: transactional saves, migrations, id prefixes, upload bookkeeping."""

from __future__ import annotations

import sqlite3

import pytest

from perffarm.agent.store import LocalStore, RunNotFound, StoreError
from perffarm.model import Result, RunDocument


def make_run(**fields) -> RunDocument:
    return RunDocument(
        project="p",
        machine="m",
        results=[Result(benchmark="b", metric="wall_time", unit="s", samples=[1.0, 1.1, 0.9])],
        **fields,
    )


def test_saved_run_reads_back_identically_and_lists_newest_first(store_path):
    first, second = make_run(tag="one"), make_run(tag="two")
    with LocalStore(store_path) as store:
        store.save(first)
        store.save(second)
        assert store.load(str(first.id)) == first
        assert store.load_json(str(second.id)) == second.to_json()
        assert [row.tag for row in store.list_runs()] == ["two", "one"]
        assert store.integrity_check() == "ok"
    # WAL mode: readers do not block the writer of a running agent.
    mode = sqlite3.connect(store_path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_id_prefixes_resolve_like_git_commits(store_path):
    run = make_run()
    with LocalStore(store_path) as store:
        store.save(run)
        assert store.resolve_id(str(run.id)[:6]) == str(run.id)
        with pytest.raises(RunNotFound, match="no stored run"):
            store.resolve_id("zzzz")


def test_upload_bookkeeping_is_per_server(store_path):
    old, new = make_run(), make_run()
    with LocalStore(store_path) as store:
        store.save(old)
        store.save(new)
        store.mark_uploaded(str(old.id), "http://farm:8080/")
        assert store.pending_uploads("http://FARM:8080") == [str(new.id)]
        assert set(store.pending_uploads("http://other")) == {str(old.id), str(new.id)}


def test_a_run_saved_with_other_content_is_pending_again_everywhere(store_path):
    run = make_run(tag="first")
    run_id = str(run.id)
    with LocalStore(store_path) as store:
        store.save(run)
        for server in ("http://farm:8080", "http://other"):
            store.mark_uploaded(run_id, server)
        store.save(run)  # the same content again: still uploaded
        assert store.pending_uploads("http://farm:8080") == []
        store.save(run.model_copy(update={"tag": "second"}))
        assert store.pending_uploads("http://farm:8080") == [run_id]
        assert store.uploaded_to(run_id) == []


def test_a_store_from_a_newer_perffarm_or_not_sqlite_is_refused(tmp_path):
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer perffarm"):
        LocalStore(newer)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable perffarm store"):
        LocalStore(garbage)
