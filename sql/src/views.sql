----------------------------------------------------------------------------
-- Views
----------------------------------------------------------------------------

CREATE VIEW delta.stats AS
SELECT r.namespace,
       r.kind,
       r.state,
       count(*) AS count,
       now() - min(r.due_at) FILTER (WHERE r.due_at <= now()) AS oldest_due_age,
       count(*) FILTER (WHERE r.synced_at > now() - interval '1 minute') AS synced_last_minute
FROM delta.resource AS r
GROUP BY r.namespace, r.kind, r.state;

CREATE VIEW delta.workers AS
SELECT p.pid, p.database, p.namespace, p.role, p.state, p.resource_id, p.kind,
       p.processed, p.failed, p.started_at
FROM delta._processes() AS p;
