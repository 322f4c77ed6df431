#!/usr/bin/python3
# Copyright: the delta authors.
"""Example: an external worker that pushes contacts to an HTTP API.

    /usr/bin/python3 clients/python/example/http_sync.py "dbname=app"

Starts a stand-in for a CRM's HTTP API on 127.0.0.1 (in a thread), sets up an
external controller "crm_contact" in a namespace "crm" without server
workers, informs four contacts in one transaction, and runs a Worker until
none of them waits any more. The handler PUTs each contact to the API:
  - 204: returns, the resource is synced;
  - 429 with Retry-After: raises Snooze, tried again later, attempt given back;
  - 422 (no email): urllib raises HTTPError, recorded as a failed attempt,
    retried until degraded at max_attempts (3);
  - a contact marked "gone": raises Delete, the resource ends deleted.
Prints the API's contacts and each resource's state, then exits.
"""

import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import psycopg  # noqa: E402

from delta_worker import Delete, Snooze, Worker, inform  # noqa: E402

KIND, NAMESPACE = "crm_contact", "crm"

CONTACTS = {
    "1": {"name": "Ann", "email": "ann@example.com"},
    "2": {"name": "Bob", "email": "bob@example.com", "busy": True},
    "3": {"name": "Cid"},
    "4": {"name": "Dee", "email": "dee@example.com", "gone": True},
}


class CrmApi(http.server.BaseHTTPRequestHandler):
    """PUT /contacts/<id>: 429 the first time for a "busy" contact, 422
    without an email, else 204 and stored."""

    contacts = {}
    refused = set()

    def do_PUT(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        contact_id = self.path.rsplit("/", 1)[-1]
        if body.get("busy") and contact_id not in self.refused:
            self.refused.add(contact_id)
            self.send_response(429)
            self.send_header("Retry-After", "1")
        elif "email" not in body:
            # the reason given: Python 3.13 renamed 422's default one
            self.send_response(422, "Unprocessable Entity")
        else:
            self.contacts[contact_id] = body
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def push_contact(api_url):
    # the API is local: never through an http_proxy of the environment
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def handler(resource):
        if resource.object.get("gone"):
            raise Delete("the contact was closed")
        request = urllib.request.Request(
            f"{api_url}/contacts/{resource.object_id}",
            data=json.dumps(resource.object).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            opener.open(request, timeout=5).close()
        except urllib.error.HTTPError as e:
            if e.code == 429:
                raise Snooze(float(e.headers.get("Retry-After", "1")))
            raise

    return handler


def setup(conn):
    """The namespace without server workers and the external controller."""
    with conn.transaction():
        if not conn.execute(
            "SELECT 1 FROM delta.namespace WHERE name = %s", (NAMESPACE,)
        ).fetchone():
            conn.execute(
                "SELECT delta.create_namespace(%s, max_workers => 0)", (NAMESPACE,)
            )
        conn.execute(
            "SELECT delta.register_controller(%s, work => NULL, max_attempts => 3,"
            " backoff_base => '100 milliseconds', replace => true)",
            (KIND,),
        )
        for contact_id, contact in CONTACTS.items():
            inform(conn, KIND, contact_id, contact, namespace=NAMESPACE)


def waiting(conn):
    """How many of the example's resources still wait for a run."""
    return conn.execute(
        "SELECT count(*) FROM delta.resource WHERE kind = %s"
        " AND state NOT IN ('synced', 'degraded', 'deleted')",
        (KIND,),
    ).fetchone()[0]


def stop_when_done(dsn, worker):
    """Stops the worker once none of the example's resources waits."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while waiting(conn):
            time.sleep(0.2)
    worker.stop()


def main(dsn):
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CrmApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{api.server_port}"

    with psycopg.connect(dsn, autocommit=True) as conn:
        setup(conn)
    worker = Worker(dsn, NAMESPACE, {KIND: push_contact(api_url)}, max=4, wait=1)
    threading.Thread(target=stop_when_done, args=(dsn, worker), daemon=True).start()
    worker.run()  # until stopped (or SIGTERM)

    for contact_id, contact in sorted(CrmApi.contacts.items()):
        print(f"api: {contact_id} {json.dumps(contact, sort_keys=True)}")
    with psycopg.connect(dsn) as conn:
        for row in conn.execute(
            "SELECT object_id, state, attempt, errors -> -1 ->> 'error'"
            " FROM delta.resource WHERE kind = %s ORDER BY object_id",
            (KIND,),
        ):
            print("resource: %s %s attempt %s last error: %s" % row)
    api.shutdown()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
