#!/usr/bin/python3
# Copyright: the delta authors.
"""A worker process for test_crash.py:

    worker_proc.py DSN NAMESPACE KIND LOG [LEASE_SECONDS]

Its handler appends "start <object_id> <attempt> <pid>" to LOG, sleeps
object["sleep"] seconds when the attempt is object["sleep_on_attempt"],
then appends "done ...". Logs (a refused complete) go to stderr.
"""

import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from delta_worker import Worker  # noqa: E402


def main(dsn, namespace, kind, log, lease=None):
    def note(what, resource):
        with open(log, "a") as f:
            f.write(f"{what} {resource.object_id} {resource.attempt} {os.getpid()}\n")

    def handler(resource):
        note("start", resource)
        if resource.object.get("sleep_on_attempt") == resource.attempt:
            time.sleep(resource.object["sleep"])
        note("done", resource)

    lease = float(lease) if lease else None
    Worker(dsn, namespace, {kind: handler}, wait=1, lease=lease).run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    main(*sys.argv[1:])
