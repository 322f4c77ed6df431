# Copyright: the delta authors.
"""Worker and inform against a real server: each handler outcome ends the
run the way the README says."""

import threading
import unittest

import psycopg

from common import DSN, DeltaTestCase, external_kind, resource, sql, states
from delta_worker import Delete, Snooze, Worker, inform

NS = "py_worker"


class Recorder:
    """A handler that records its calls and does what `action` says."""

    def __init__(self, action=lambda resource: None):
        self.calls, self.action = [], action
        self.lock = threading.Lock()

    def __call__(self, resource):
        with self.lock:
            self.calls.append((resource.object_id, resource.attempt))
        return self.action(resource)

    def attempts(self, object_id):
        return [a for o, a in self.calls if o == object_id]


class WorkerTest(DeltaTestCase):
    def test_one_call_per_inform_synced(self):
        external_kind("py_ok", NS)
        with psycopg.connect(DSN) as conn:
            for i in range(3):
                row = inform(conn, "py_ok", f"o{i}", {"n": i}, namespace=NS,
                             tags=["python"], metadata={"from": "test"})
                self.assertEqual(row["state"], "scheduled")
        handler = Recorder()
        self.run_until(
            Worker(DSN, NS, {"py_ok": handler}, max=2, wait=1),
            lambda: set(states("py_ok").values()) == {"synced"},
            "py_ok synced",
        )
        self.assertEqual(sorted(handler.calls), [("o0", 1), ("o1", 1), ("o2", 1)])
        r = resource("py_ok", "o1")
        self.assertEqual((r["state"], r["attempt"], r["errors"]), ("synced", 1, []))

    def test_handler_gets_the_resource(self):
        external_kind("py_fields", NS)
        with psycopg.connect(DSN) as conn:
            inform(conn, "py_fields", "f1", {"a": [1, 2]}, namespace=NS,
                   tags=["tag1"], metadata={"m": "x"})
        seen, names = [], []

        def handler(resource):
            seen.append(resource)
            names.extend(r["application_name"] for r in sql(
                "SELECT a.application_name FROM pg_stat_activity AS a"
                " JOIN delta.resource AS r ON r.holder_pid = a.pid WHERE r.id = %s",
                (resource.id,)))

        self.run_until(
            Worker(DSN, NS, {"py_fields": handler}, wait=1),
            lambda: states("py_fields") == {"f1": "synced"},
            "f1 synced",
        )
        (r,) = seen
        self.assertEqual(
            (r.kind, r.object_id, r.namespace, r.object, r.metadata, r.tags,
             r.attempt, r.errors),
            ("py_fields", "f1", NS, {"a": [1, 2]}, {"m": "x"}, ["tag1"], 1, []),
        )
        self.assertIsNone(r.lease_until)  # held by the session
        self.assertEqual(r.id, resource("py_fields", "f1")["id"])
        self.assertEqual(names, [f"delta_worker {NS}"])  # its session, named

    def test_exception_fails_retries_degrades(self):
        external_kind("py_fail", NS, max_attempts=3,
                      backoff_base="10 milliseconds", backoff_max="20 milliseconds")
        sql("SELECT delta.inform('py_fail', 'x', '{}', namespace => %s)", (NS,))

        def boom(resource):
            raise ValueError(f"boom on attempt {resource.attempt}")

        handler = Recorder(boom)
        self.run_until(
            Worker(DSN, NS, {"py_fail": handler}, wait=1),
            lambda: states("py_fail") == {"x": "degraded"},
            "x degraded",
        )
        self.assertEqual(handler.attempts("x"), [1, 2, 3])
        errors = resource("py_fail", "x")["errors"]
        self.assertEqual([e["error"] for e in errors],
                         [f"boom on attempt {i}" for i in (1, 2, 3)])
        self.assertIn("ValueError", errors[0]["detail"])  # the traceback

    def test_snooze_gives_the_attempt_back(self):
        external_kind("py_snooze", NS)
        sql("SELECT delta.inform('py_snooze', 's', '{}', namespace => %s)", (NS,))

        def snooze_once(resource):
            if len(handler.calls) == 1:
                raise Snooze(0.2)

        handler = Recorder(snooze_once)
        self.run_until(
            Worker(DSN, NS, {"py_snooze": handler}, wait=1),
            lambda: states("py_snooze") == {"s": "synced"},
            "s synced",
        )
        self.assertEqual(handler.attempts("s"), [1, 1])
        r = resource("py_snooze", "s")
        self.assertEqual((r["attempt"], r["errors"]), (1, []))

    def test_delete(self):
        external_kind("py_delete", NS)
        sql("SELECT delta.inform('py_delete', 'd', '{}', namespace => %s)", (NS,))

        def delete(resource):
            raise Delete("not wanted")

        self.run_until(
            Worker(DSN, NS, {"py_delete": Recorder(delete)}, wait=1),
            lambda: states("py_delete") == {"d": "deleted"},
            "d deleted",
        )
        self.assertEqual([e["error"] for e in resource("py_delete", "d")["errors"]],
                         ["resource deleted by its external worker: not wanted"])

    def test_stop_gives_back_unstarted_claims(self):
        external_kind("py_stop", NS)
        for i in range(3):
            sql("SELECT delta.inform('py_stop', %s, '{}', namespace => %s)",
                (f"s{i}", NS))
        worker = None

        def stop_at_first(resource):
            worker.stop()

        handler = Recorder(stop_at_first)
        worker = Worker(DSN, NS, {"py_stop": handler}, max=3, wait=1)
        worker.run()  # returns after the first run: stop() was called in it
        self.assertEqual(len(handler.calls), 1)
        first = handler.calls[0][0]
        rows = sql("SELECT object_id, state, attempt FROM delta.resource"
                   " WHERE kind = 'py_stop' ORDER BY object_id")
        self.assertEqual(
            [(r["object_id"], r["state"], r["attempt"]) for r in rows],
            [(o, "synced", 1) if o == first else (o, "scheduled", 0)
             for o in ("s0", "s1", "s2")],
        )

    def test_other_kinds_are_not_claimed(self):
        external_kind("py_mine", NS)
        external_kind("py_theirs", NS)
        sql("SELECT delta.inform('py_theirs', 't', '{}', namespace => %s)", (NS,))
        sql("SELECT delta.inform('py_mine', 'm', '{}', namespace => %s)", (NS,))
        self.run_until(
            Worker(DSN, NS, {"py_mine": Recorder()}, wait=1),
            lambda: states("py_mine") == {"m": "synced"},
            "m synced",
        )
        r = resource("py_theirs", "t")
        self.assertEqual((r["state"], r["attempt"]), ("scheduled", 0))


class InformTest(unittest.TestCase):
    def test_in_the_callers_transaction(self):
        external_kind("py_tx", NS)
        with psycopg.connect(DSN) as conn:
            inform(conn, "py_tx", "rolled_back", {}, namespace=NS)
            conn.rollback()
            inform(conn, "py_tx", "committed", {"v": 1}, namespace=NS,
                   max_attempts=2)
        self.assertEqual(states("py_tx"), {"committed": "scheduled"})
        r = resource("py_tx", "committed")
        self.assertEqual((r["object"], r["max_attempts"]), ({"v": 1}, 2))

    def test_an_option_is_a_named_argument_only(self):
        with psycopg.connect(DSN) as conn:
            with self.assertRaises(ValueError):
                inform(conn, "py_tx", "x", {}, **{"namespace => 'a', tags": 1})


if __name__ == "__main__":
    unittest.main()
