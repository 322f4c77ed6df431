# Copyright: the delta authors.
"""Shared by the client's tests: a database with delta (DSN in
$DELTA_TEST_DSN), external controllers, and a worker run in a thread until
the database shows what a test waits for."""

import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

DSN = os.environ.get("DELTA_TEST_DSN", "")
TIMEOUT = float(os.environ.get("DELTA_TEST_TIMEOUT", "30"))


def connect():
    return psycopg.connect(DSN, autocommit=True, row_factory=dict_row)


def sql(query, params=()):
    """Runs one statement in its own connection; the rows as dicts."""
    with connect() as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def external_kind(kind, namespace, **settings):
    """A namespace without server workers and an external controller of
    kind, without resources (registered anew)."""
    if sql("SELECT 1 FROM delta.controller WHERE kind = %s", (kind,)):
        sql("SELECT delta.unregister_controller(%s)", (kind,))
    if not sql("SELECT 1 FROM delta.namespace WHERE name = %s", (namespace,)):
        sql("SELECT delta.create_namespace(%s, max_workers => 0)", (namespace,))
    names = "".join(f", {k} => %s" for k in settings)
    sql(
        f"SELECT delta.register_controller(%s, work => NULL{names})",
        (kind, *settings.values()),
    )


def resource(kind, object_id):
    rows = sql(
        "SELECT * FROM delta.resource WHERE kind = %s AND object_id = %s",
        (kind, object_id),
    )
    return rows[0] if rows else None


def wait_until(condition, what, timeout=TIMEOUT):
    """Polls condition() until true; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def states(kind):
    rows = sql(
        "SELECT object_id, state FROM delta.resource WHERE kind = %s", (kind,)
    )
    return {r["object_id"]: r["state"] for r in rows}


class WorkerThread:
    """worker.run() in a thread; stop() stops it and re-raises its error."""

    def __init__(self, worker):
        self.worker, self.error = worker, None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.worker.run()
        except BaseException as e:  # noqa: B902 - reported by stop()
            self.error = e

    def stop(self):
        self.worker.stop()
        self.thread.join(TIMEOUT)
        if self.thread.is_alive():
            raise AssertionError("the worker did not stop")
        if self.error:
            raise self.error


class DeltaTestCase(unittest.TestCase):
    def run_until(self, worker, condition, what):
        """Runs worker until condition() holds, then stops it."""
        runner = WorkerThread(worker)
        try:
            wait_until(condition, what)
        finally:
            runner.stop()
