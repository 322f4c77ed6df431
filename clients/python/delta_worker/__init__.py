# Copyright: the delta authors.
"""An external worker for delta (issue 11), on psycopg 3.

A Worker claims due resources of one namespace with delta.claim (in
autocommit, so each claim is committed before a handler runs), calls the
handler of the resource's kind, and ends the run with delta.complete, or
delta.fail / delta.snooze / delta.delete when the handler raises.  inform()
informs a resource in the caller's own transaction.

    from delta_worker import Worker, Snooze, Delete, inform

    def push_user(resource):
        ...                      # return: synced; raise: failed

    Worker("dbname=app", "mail", {"user": push_user}).run()
"""

import dataclasses
import datetime
import logging
import re
import signal
import threading
import traceback
import uuid
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

__all__ = ["Worker", "Resource", "Snooze", "Delete", "inform"]

log = logging.getLogger("delta_worker")

Seconds = Union[int, float, datetime.timedelta]

# a claim that is no longer held (ended, rescued, of an older claim)
CLAIM_NOT_HELD = "55000"


@dataclasses.dataclass(frozen=True)
class Resource:
    """A claimed resource: the row delta.claim returns, with its token."""

    token: uuid.UUID
    lease_until: Optional[datetime.datetime]
    id: int
    kind: str
    object_id: str
    namespace: str
    object: Any
    metadata: Any
    tags: Sequence[str]
    attempt: int
    max_attempts: int
    generation: int
    created_at: datetime.datetime
    synced_at: Optional[datetime.datetime]
    external_created_at: Optional[datetime.datetime]
    errors: Any

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Resource":
        # columns a newer delta.claim may add are ignored
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


class Snooze(Exception):
    """Raised by a handler: the resource waits `seconds`, attempt given back."""

    def __init__(self, seconds: Seconds):
        super().__init__(f"snooze {seconds}")
        self.delay = _interval(seconds)


class Delete(Exception):
    """Raised by a handler: the resource ends deleted."""

    def __init__(self, reason: Optional[str] = None):
        super().__init__(reason)
        self.reason = reason


def _interval(seconds: Seconds) -> datetime.timedelta:
    if isinstance(seconds, datetime.timedelta):
        return seconds
    return datetime.timedelta(seconds=seconds)


class Worker:
    """Claims resources of `namespace` and runs `handlers[kind](resource)`.

    max:   resources claimed per delta.claim call (run one after another).
    wait:  how long one claim blocks when nothing is due; stop() takes
           effect when it returns, so keep it a few seconds.
    lease: None: the claim is held by this worker's session (rescued as soon
           as the connection ends); an interval: held by a lease that a
           thread renews with delta.heartbeat every third of it, for
           connections that change backends (transaction pooling).
    """

    def __init__(
        self,
        conninfo: str,
        namespace: str,
        handlers: Mapping[str, Callable[[Resource], Any]],
        max: int = 1,
        wait: Seconds = 5,
        lease: Optional[Seconds] = None,
    ):
        if not handlers:
            raise ValueError("a Worker needs at least one handler")
        self.conninfo = conninfo
        self.namespace = namespace
        self.handlers = dict(handlers)
        self.max = max
        self.wait = _interval(wait)
        self.lease = None if lease is None else _interval(lease)
        self._stopping = False  # a plain flag: stop() may run in a signal handler
        self._held = set()  # tokens claimed and not yet ended
        self._held_lock = threading.Lock()

    def stop(self) -> None:
        """Finish the run in hand, give back unstarted claims, claim no more.

        Safe to call from a signal handler or another thread.
        """
        self._stopping = True

    def run(self) -> None:
        """Work until stop() (or SIGTERM/SIGINT, when run in the main thread)."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: self.stop())
        done = threading.Event()
        heartbeat = None
        if self.lease is not None:
            heartbeat = threading.Thread(
                target=self._heartbeat, args=(done,), name="delta-heartbeat",
                daemon=True,
            )
            heartbeat.start()
        try:
            with self._connect(row_factory=dict_row) as conn:
                while not self._stopping:
                    claimed = self._claim(conn)
                    for i, resource in enumerate(claimed):
                        if self._stopping:
                            self._give_back(conn, claimed[i:])
                            break
                        self._work(conn, resource)
        finally:
            done.set()
            if heartbeat is not None:
                heartbeat.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _connect(self, **kwargs) -> psycopg.Connection:
        """An autocommit connection that pg_stat_activity names, unless
        conninfo names it."""
        if "application_name" not in psycopg.conninfo.conninfo_to_dict(self.conninfo):
            kwargs["application_name"] = f"delta_worker {self.namespace}"
        return psycopg.connect(self.conninfo, autocommit=True, **kwargs)

    def _claim(self, conn: psycopg.Connection) -> list:
        # execute() returns once the server is ready for the next query, so
        # after the claim's commit: no handler runs on an uncommitted claim
        rows = conn.execute(
            "SELECT * FROM delta.claim(%s, max => %s, kinds => %s,"
            " wait => %s, lease => %s)",
            (self.namespace, self.max, list(self.handlers), self.wait, self.lease),
        ).fetchall()
        resources = [Resource.from_row(r) for r in rows]
        with self._held_lock:
            self._held.update(r.token for r in resources)
        return resources

    def _work(self, conn: psycopg.Connection, resource: Resource) -> None:
        """Runs the handler and ends the run the way it returned or raised."""
        try:
            self.handlers[resource.kind](resource)
        except Snooze as s:
            self._end(conn, resource, "snooze", "delta.snooze(%s, %s)", s.delay)
        except Delete as d:
            self._end(conn, resource, "delete", "delta.delete(%s, %s)", d.reason)
        except Exception as exc:
            self._end(
                conn,
                resource,
                "fail",
                "delta.fail(%s, %s, %s)",
                str(exc) or type(exc).__name__,
                traceback.format_exc(),
            )
        else:
            self._end(conn, resource, "complete", "delta.complete(%s::uuid)")

    def _give_back(self, conn: psycopg.Connection, resources: list) -> None:
        # a snooze of 0 makes them due again at once, the attempt given back
        for resource in resources:
            self._end(conn, resource, "give back", "delta.snooze(%s, %s)",
                      datetime.timedelta(0))

    def _end(self, conn, resource, what, call, *args) -> None:
        """SELECT call(token, args); a claim no longer held drops the result."""
        try:
            conn.execute("SELECT " + call, (resource.token, *args))
        except psycopg.Error as e:
            if e.sqlstate != CLAIM_NOT_HELD:
                raise
            log.warning(
                "%s %s/%s refused (%s %s): another run took over, result dropped",
                what, resource.kind, resource.object_id, e.sqlstate,
                e.diag.message_primary,
            )
        finally:
            with self._held_lock:
                self._held.discard(resource.token)

    def _heartbeat(self, done: threading.Event) -> None:
        """Renews the leases of the held claims every third of the lease."""
        period = self.lease.total_seconds() / 3
        conn = None
        while not done.wait(period):
            with self._held_lock:
                tokens = list(self._held)
            try:
                conn = conn or self._connect()
                for token in tokens:
                    self._renew(conn, token)
            except psycopg.OperationalError as e:
                # the next period tries again on a new connection
                log.warning("heartbeat: %s", e)
                if conn:
                    conn.close()
                conn = None
        if conn:
            conn.close()

    def _renew(self, conn: psycopg.Connection, token: uuid.UUID) -> None:
        try:
            conn.execute("SELECT delta.heartbeat(%s)", (token,))
        except psycopg.Error as e:
            if e.sqlstate != CLAIM_NOT_HELD:
                raise
            # ended meanwhile, or lost (the run's end will say): renewed no more
            with self._held_lock:
                self._held.discard(token)
            log.info("heartbeat of claim %s refused: %s", token,
                     e.diag.message_primary)


_OPTION_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def inform(
    conn: psycopg.Connection, kind: str, object_id: str, obj: Mapping, **options
) -> dict:
    """delta.inform(kind, object_id, obj, option => value, ...) in conn's
    transaction (it is informed when the caller commits).  Options are
    delta.inform's named arguments (namespace, metadata, tags, max_attempts,
    external_created_at); dicts are passed as jsonb.  Returns the
    delta.inform_result row as a dict.
    """
    args = [sql.SQL("%s"), sql.SQL("%s"), sql.SQL("%s")]
    values = [kind, object_id, Jsonb(obj)]
    for name, value in options.items():
        if not _OPTION_NAME.match(name):
            raise ValueError(f"not an argument of delta.inform: {name!r}")
        args.append(sql.SQL("{} => %s").format(sql.Identifier(name)))
        values.append(Jsonb(value) if isinstance(value, dict) else value)
    query = sql.SQL("SELECT * FROM delta.inform({})").format(sql.SQL(", ").join(args))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, values).fetchone()
