# Copyright: the delta authors.
"""Worker processes that die, lose their session or freeze mid-run
(worker_proc.py): the claim is rescued and the resource synced exactly once by another worker; a late
completion of a rescued claim is refused and changes nothing."""

import os
import signal
import subprocess
import sys
import tempfile
import unittest

from common import DSN, HERE, DeltaTestCase, external_kind, resource, sql, wait_until

NS = "py_crash"


class CrashTest(DeltaTestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.log = os.path.join(self.dir.name, "runs.log")
        open(self.log, "w").close()

    def spawn(self, kind, lease=None):
        """A worker process; its stderr is in proc.stderr_path."""
        stderr_path = os.path.join(self.dir.name, f"worker{len(os.listdir(self.dir.name))}.err")
        args = [sys.executable, os.path.join(HERE, "worker_proc.py"),
                DSN, NS, kind, self.log] + ([str(lease)] if lease else [])
        with open(stderr_path, "w") as err:
            proc = subprocess.Popen(args, stderr=err)
        proc.stderr_path = stderr_path
        self.addCleanup(self.reap, proc)
        return proc

    def reap(self, proc):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait()

    def stop(self, proc):
        proc.terminate()
        self.assertEqual(proc.wait(30), 0, self.stderr(proc))

    def stderr(self, proc):
        with open(proc.stderr_path) as f:
            return f.read()

    def runs(self, what):
        """(object_id, attempt, pid) of the log's lines starting with what."""
        with open(self.log) as f:
            lines = [line.split() for line in f]
        return [(o, int(a), int(p)) for w, o, a, p in lines if w == what]

    def errors(self, kind, object_id):
        return resource(kind, object_id)["errors"]

    def test_sigkill_mid_run(self):
        kind = "py_kill"
        external_kind(kind, NS, backoff_base="10 milliseconds")
        sql("SELECT delta.inform(%s, 'k', '{\"sleep\": 600, \"sleep_on_attempt\": 1}',"
            " namespace => %s)", (kind, NS))
        a = self.spawn(kind)
        wait_until(lambda: self.runs("start") == [("k", 1, a.pid)], "a's run")
        a.kill()
        a.wait()
        # the session ended: rescued without another worker, as a failure
        wait_until(lambda: self.errors(kind, "k"), "the rescue")
        self.assertEqual(self.errors(kind, "k")[0]["sqlstate"], "57P01")
        b = self.spawn(kind)
        wait_until(lambda: resource(kind, "k")["state"] == "synced", "k synced")
        self.stop(b)
        self.assertEqual(self.runs("start"), [("k", 1, a.pid), ("k", 2, b.pid)])
        self.assertEqual(self.runs("done"), [("k", 2, b.pid)])
        r = resource(kind, "k")
        self.assertEqual((r["attempt"], len(r["errors"])), (2, 1))

    def test_session_terminated_mid_run(self):
        kind = "py_terminate"
        external_kind(kind, NS, backoff_base="10 milliseconds")
        sql("SELECT delta.inform(%s, 't', '{\"sleep\": 3, \"sleep_on_attempt\": 1}',"
            " namespace => %s)", (kind, NS))
        a = self.spawn(kind)
        wait_until(lambda: self.runs("start") == [("t", 1, a.pid)], "a's run")
        sql("SELECT pg_terminate_backend(holder_pid) FROM delta.resource"
            " WHERE kind = %s AND object_id = 't'", (kind,))
        b = self.spawn(kind)
        wait_until(lambda: resource(kind, "t")["state"] == "synced", "t synced by b")
        self.stop(b)
        # a's handler ends, but its connection is gone: run() raises
        self.assertNotEqual(a.wait(30), 0)
        self.assertIn("psycopg.OperationalError", self.stderr(a))
        r = resource(kind, "t")
        self.assertEqual((r["attempt"], [e["sqlstate"] for e in r["errors"]]),
                         (2, ["57P01"]))
        self.assertEqual(self.runs("start"), [("t", 1, a.pid), ("t", 2, b.pid)])

    def test_lease_not_renewed(self):
        kind = "py_lease"
        external_kind(kind, NS, backoff_base="10 milliseconds")
        sql("SELECT delta.inform(%s, 'l', '{\"sleep\": 3, \"sleep_on_attempt\": 1}',"
            " namespace => %s)", (kind, NS))
        a = self.spawn(kind, lease=2)
        wait_until(lambda: self.runs("start") == [("l", 1, a.pid)], "a's run")
        os.kill(a.pid, signal.SIGSTOP)  # no heartbeat, no completion
        b = self.spawn(kind)
        wait_until(lambda: resource(kind, "l")["state"] == "synced", "l synced by b")
        self.stop(b)
        before = resource(kind, "l")
        self.assertEqual((before["attempt"], [e["sqlstate"] for e in before["errors"]]),
                         (2, ["57P01"]), "a's attempt ended when the lease ran out")

        os.kill(a.pid, signal.SIGCONT)  # a wakes up and completes, too late
        wait_until(lambda: ("l", 1, a.pid) in self.runs("done"), "a's late end")
        wait_until(lambda: "refused (55000" in self.stderr(a), "the refusal")
        self.assertIn("complete py_lease/l refused (55000", self.stderr(a))
        self.assertEqual(resource(kind, "l"), before)
        self.stop(a)  # the refusal did not stop a
        self.assertEqual(self.runs("start"), [("l", 1, a.pid), ("l", 2, b.pid)])

    def test_heartbeat_keeps_a_long_run(self):
        kind = "py_heartbeat"
        external_kind(kind, NS)
        sql("SELECT delta.inform(%s, 'h', '{\"sleep\": 5, \"sleep_on_attempt\": 1}',"
            " namespace => %s)", (kind, NS))
        a = self.spawn(kind, lease=3)  # renewed every second
        wait_until(lambda: resource(kind, "h")["state"] == "synced", "h synced")
        self.stop(a)
        r = resource(kind, "h")
        self.assertEqual((r["attempt"], r["errors"]), (1, []))


if __name__ == "__main__":
    unittest.main()
