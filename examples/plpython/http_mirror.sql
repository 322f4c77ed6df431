-- delta example: mirror products to an HTTP API, in PL/Python.
--
--     psql -f examples/plpython/http_mirror.sql   (as a superuser: plpython3u is untrusted;
--                                                  Debian: apt-get install postgresql-plpython3-15)
--
-- Products come from a source and are pushed, one resource each, to a
-- target:
--   source  GET <list_url>?after=...&limit=...  (a JSON array of products),
--           or, while list_url is NULL, the local table mirror.products
--   target  POST <push_url> with the product as JSON,
--           or, while push_url is NULL, the local table mirror.outbox
-- Both URLs live in mirror.settings, NULL by default, so the example works
-- without any network: set them to talk to real endpoints.
--
-- Delta concepts shown:
--   inform function in Python   pulls new products (options."after" = the
--                               cursor delta keeps), runs every
--                               inform_interval and on delta.schedule_inform
--   work function in Python     pushes one product; a Python exception makes
--                               the run fail, and its text and traceback are
--                               recorded in delta.resource.errors (e.g.
--                               "ValueError: ..." or, for exceptions outside
--                               builtins, "urllib.error.URLError: ...")
--   delta.resource_snooze       rate limiting: HTTP 429 → due again after
--                               Retry-After, the attempt not counted
--   work_timeout vs. Python     a statement timeout cannot interrupt Python
--                               blocked in a socket call: give every HTTP
--                               call its own, shorter timeout
--
-- The file can be run again: it creates what is missing and replaces the
-- functions and the controller.

CREATE EXTENSION IF NOT EXISTS delta;
CREATE EXTENSION IF NOT EXISTS plpython3u;

CREATE SCHEMA IF NOT EXISTS mirror;

CREATE TABLE IF NOT EXISTS mirror.settings (
    name   text PRIMARY KEY,
    value  text
);
INSERT INTO mirror.settings (name, value) VALUES
    ('list_url', NULL),          -- source API; NULL: mirror.products
    ('push_url', NULL),          -- target API; NULL: mirror.outbox
    ('http_timeout', '10'),      -- seconds, per HTTP call (keep below work_timeout)
    ('local_rate_limit', NULL)   -- pushes per minute mirror.outbox accepts before
                                 -- answering "429, retry after 5 s"; NULL: no limit
ON CONFLICT (name) DO NOTHING;

-- The local source.
CREATE TABLE IF NOT EXISTS mirror.products (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    price       numeric,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The local target: what would have been POSTed.
CREATE TABLE IF NOT EXISTS mirror.outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_id  text NOT NULL,
    body       jsonb NOT NULL,
    pushed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

----------------------------------------------------------------------------
-- The inform function: list products created after the cursor.
----------------------------------------------------------------------------

-- options is delta.inform_options as a dict: "after" (a timestamptz as text,
-- or None on the very first run), "labels", "limit", "order_by".  Each item
-- returned is a dict with every field of delta.inform_item (None = the
-- default); "object" is JSON text, converted to jsonb by PostgreSQL.
-- delta moves the cursor to the newest external_created_at returned, so the
-- next run asks only for what is newer.  An exception fails the run: it is
-- retried after a back-off and the cursor stays where it was.
CREATE OR REPLACE FUNCTION mirror.product_inform(options delta.inform_options)
    RETURNS SETOF delta.inform_item
    LANGUAGE plpython3u
    SET search_path = pg_catalog, pg_temp
    AS $$
import json
import urllib.parse
import urllib.request

def setting(name):
    plan = plpy.prepare("SELECT value FROM mirror.settings WHERE name = $1", ["text"])
    rows = plpy.execute(plan, [name])
    return rows[0]["value"] if rows else None

def item(product):
    return {
        "object_id": str(product["id"]),
        "object": json.dumps(product, sort_keys=True),
        "external_created_at": product["created_at"],
        "namespace": None, "metadata": None, "tags": None, "max_attempts": None,
    }

url = setting("list_url")
if url is None:
    plan = plpy.prepare(
        """SELECT p.id, p.name, p.price::text AS price, p.created_at::text AS created_at
           FROM mirror.products AS p
           WHERE p.created_at > coalesce($1, '-infinity')
           ORDER BY p.created_at
           LIMIT $2""", ["timestamptz", "integer"])
    products = plpy.execute(plan, [options["after"], options["limit"]])
else:
    query = {k: v for k, v in (("after", options["after"]), ("limit", options["limit"])) if v is not None}
    if query:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
    # errors (URLError, a timeout, bad JSON) propagate: the run fails
    with urllib.request.urlopen(url, timeout=float(setting("http_timeout") or 10)) as response:
        products = json.load(response)

return [item(dict(p)) for p in products]
$$;

----------------------------------------------------------------------------
-- The work function: push one product.
----------------------------------------------------------------------------

-- resource is delta.resource as a dict: "object" is the jsonb as JSON text,
-- "object_id", "attempt", "generation"... as Python values.
--
-- Outcomes:
--   returns                    → synced (with the outbox row, if local)
--   raises                     → failed; the exception text is recorded and
--                                the resource retried with back-off, then
--                                degraded after max_attempts
--   delta.resource_snooze(...) → scheduled again after the delay, attempt not
--                                counted, once the function returns: it
--                                returns normally, so return right after it
--                                (a later exception still fails the run).
CREATE OR REPLACE FUNCTION mirror.product_push(resource delta.resource)
    RETURNS void
    LANGUAGE plpython3u
    SET search_path = pg_catalog, pg_temp
    AS $$
import json
import urllib.error
import urllib.request

def setting(name):
    plan = plpy.prepare("SELECT value FROM mirror.settings WHERE name = $1", ["text"])
    rows = plpy.execute(plan, [name])
    return rows[0]["value"] if rows else None

def snooze(seconds):
    # the run ends "snoozed" when the work function returns: return after it
    plan = plpy.prepare("SELECT delta.resource_snooze(make_interval(secs => $1))", ["float8"])
    plpy.execute(plan, [seconds])

def post(url, body, key):
    """(status, headers) of POSTing body; network errors raise."""
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json",
        # the same run retried sends the same key: the target can de-duplicate
        "Idempotency-Key": key,
    })
    try:
        with urllib.request.urlopen(request, timeout=float(setting("http_timeout") or 10)) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers

product = json.loads(resource["object"])
# Bad data: raise, delta records "ValueError: ..." and retries (a later
# inform with a fixed object starts again from attempt 0).
if product.get("price") is None:
    raise ValueError("product %s has no price" % resource["object_id"])
body = json.dumps({"id": resource["object_id"], "name": product.get("name"),
                   "price": str(product["price"])}, sort_keys=True)

url = setting("push_url")
if url is None:
    # local stand-in for the target API, with its rate limit
    limit = setting("local_rate_limit")
    if limit is not None:
        recent = plpy.execute("SELECT count(*) AS n FROM mirror.outbox "
                              "WHERE pushed_at > now() - interval '1 minute'")[0]["n"]
        if recent >= int(limit):
            snooze(5)                     # "429 Too Many Requests, Retry-After: 5"
            return
    plan = plpy.prepare("INSERT INTO mirror.outbox (object_id, body) VALUES ($1, $2::jsonb)",
                        ["text", "text"])
    plpy.execute(plan, [resource["object_id"], body])
    return

status, headers = post(url, body, "%s/%s/%s" % (resource["kind"], resource["object_id"],
                                                resource["generation"]))
if status == 429:
    retry_after = headers.get("Retry-After", "5")
    snooze(float(retry_after) if retry_after.isdigit() else 5)
    return
if not 200 <= status < 300:
    raise RuntimeError("POST %s for product %s answered HTTP %d" % (url, resource["object_id"], status))
$$;

----------------------------------------------------------------------------
-- The controller.
----------------------------------------------------------------------------

SELECT kind, work, inform, max_attempts, work_timeout
FROM delta.register_controller(
    kind            => 'mirror_product',
    work            => 'mirror.product_push(delta.resource)',
    inform          => 'mirror.product_inform(delta.inform_options)',
    inform_interval => '5 minutes',
    max_attempts    => 5,
    work_timeout    => '30 seconds',
    inform_timeout  => '30 seconds',
    backoff_base    => '2 seconds',
    replace         => true);

-- Try it:
--   INSERT INTO mirror.products (id, name, price) VALUES ('p1', 'Pen', 1.50), ('p2', 'Box', NULL);
--   SELECT delta.schedule_inform('mirror_product');   -- or wait for inform_interval
--   SELECT object_id, body FROM mirror.outbox;        -- p1
--   SELECT object_id, state, errors -> -1 ->> 'error' AS last_error
--   FROM delta.resource WHERE kind = 'mirror_product';  -- p2: "ValueError: product p2 has no price"
--   UPDATE mirror.settings SET value = '1' WHERE name = 'local_rate_limit';
--   INSERT INTO mirror.products (id, name, price) VALUES ('p3', 'Cup', 4);
--   SELECT delta.schedule_inform('mirror_product');
--   SELECT object_id, state, attempt, due_at - now() AS snoozed_for
--   FROM delta.resource WHERE object_id = 'p3';       -- scheduled, attempt 0, ~5 s
