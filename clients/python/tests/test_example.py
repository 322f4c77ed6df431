# Copyright: the delta authors.
"""example/http_sync.py against its own HTTP server: each contact ends the
way the example says."""

import os
import subprocess
import sys
import unittest

from common import DSN, HERE, resource

EXAMPLE = os.path.join(HERE, "..", "example", "http_sync.py")


class ExampleTest(unittest.TestCase):
    def test_http_sync(self):
        out = subprocess.run([sys.executable, EXAMPLE, DSN], capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(
            out.stdout.splitlines(),
            [
                'api: 1 {"email": "ann@example.com", "name": "Ann"}',
                'api: 2 {"busy": true, "email": "bob@example.com", "name": "Bob"}',
                "resource: 1 synced attempt 1 last error: None",
                "resource: 2 synced attempt 1 last error: None",
                "resource: 3 degraded attempt 3 last error: HTTP Error 422: Unprocessable Entity",
                "resource: 4 deleted attempt 1 last error: "
                "resource deleted by its external worker: the contact was closed",
            ],
        )
        # the 429 was a snooze: no error recorded
        self.assertEqual(resource("crm_contact", "2")["errors"], [])


if __name__ == "__main__":
    unittest.main()
