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

from psycopg.types.json import Jsonb

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

    def first_run(self, kind, object_id, sleep, lease=None):
        """Informs object_id, whose first attempt sleeps `sleep` seconds, and
        returns a worker process once that attempt has started."""
        external_kind(kind, NS, backoff_base="10 milliseconds")
        sql("SELECT delta.inform(%s, %s, %s, namespace => %s)",
            (kind, object_id, Jsonb({"sleep": sleep, "sleep_on_attempt": 1}), NS))
        a = self.spawn(kind, lease)
        wait_until(lambda: self.runs("start") == [(object_id, 1, a.pid)], "a's run")
        return a

    def second_run(self, kind, object_id):
        """A second worker process, stopped once it has synced object_id."""
        b = self.spawn(kind)
        wait_until(lambda: resource(kind, object_id)["state"] == "synced",
                   f"{object_id} synced by a second worker")
        self.stop(b)
        return b

    def assertRescuedOnce(self, kind, object_id, sqlstate="57P01"):
        """The first attempt ended rescued (57P01: its session ended; 57014:
        its lease ran out), the second synced."""
        r = resource(kind, object_id)
        self.assertEqual((r["state"], r["attempt"], [e["sqlstate"] for e in r["errors"]]),
                         ("synced", 2, [sqlstate]), r["errors"])
        return r

    def test_sigkill_mid_run(self):
        a = self.first_run("py_kill", "k", 600)
        a.kill()
        a.wait()
        # the session ended: rescued without another worker, as a failure
        wait_until(lambda: resource("py_kill", "k")["errors"], "the rescue")
        b = self.second_run("py_kill", "k")
        self.assertRescuedOnce("py_kill", "k")
        self.assertEqual(self.runs("start"), [("k", 1, a.pid), ("k", 2, b.pid)])
        self.assertEqual(self.runs("done"), [("k", 2, b.pid)])

    def test_session_terminated_mid_run(self):
        a = self.first_run("py_terminate", "t", 3)
        sql("SELECT pg_terminate_backend(holder_pid) FROM delta.resource"
            " WHERE kind = 'py_terminate' AND object_id = 't'")
        b = self.second_run("py_terminate", "t")
        # a's handler ends, but its connection is gone: run() raises
        self.assertNotEqual(a.wait(30), 0)
        # OperationalError, or a subclass of it in newer psycopg
        self.assertRegex(self.stderr(a), r"psycopg\.(OperationalError|errors\.AdminShutdown)")
        self.assertRescuedOnce("py_terminate", "t")
        self.assertEqual(self.runs("start"), [("t", 1, a.pid), ("t", 2, b.pid)])

    def test_lease_not_renewed(self):
        a = self.first_run("py_lease", "l", 3, lease=2)
        os.kill(a.pid, signal.SIGSTOP)  # no heartbeat, no completion
        b = self.second_run("py_lease", "l")
        before = self.assertRescuedOnce("py_lease", "l", "57014")

        os.kill(a.pid, signal.SIGCONT)  # a wakes up and completes, too late
        wait_until(lambda: ("l", 1, a.pid) in self.runs("done"), "a's late end")
        wait_until(lambda: "refused (55000" in self.stderr(a), "the refusal")
        self.assertIn("complete py_lease/l refused (55000", self.stderr(a))
        self.assertEqual(resource("py_lease", "l"), before)
        self.stop(a)  # the refusal did not stop a
        self.assertEqual(self.runs("start"), [("l", 1, a.pid), ("l", 2, b.pid)])

    def test_heartbeat_keeps_a_long_run(self):
        a = self.first_run("py_heartbeat", "h", 5, lease=3)  # renewed every second
        wait_until(lambda: resource("py_heartbeat", "h")["state"] == "synced", "h synced")
        self.stop(a)
        r = resource("py_heartbeat", "h")
        self.assertEqual((r["attempt"], r["errors"]), (1, []))


if __name__ == "__main__":
    unittest.main()
