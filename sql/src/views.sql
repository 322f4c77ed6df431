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

-- Prometheus-style figures, one row per metric and label set (README
-- "Monitoring").  Cheap at any table size: resources are counted through
-- the partial indexes of the states that are not synced (due, pending,
-- degraded or deleted rows only; synced ones are not counted), recent
-- failures through run_failed_idx, durations from the last five minutes of
-- run_ended_idx, run totals from shared memory.  A query that selects one
-- metric computes only that branch.
CREATE VIEW delta.metrics AS
WITH cell AS (
    SELECT n.name AS namespace, c.kind FROM delta.namespace AS n CROSS JOIN delta.controller AS c
), live AS (
    SELECT u.namespace, u.kind, u.state, sum(u.n) AS n
    FROM (SELECT r.namespace, r.kind, r.state, count(*) AS n FROM delta.resource AS r
          WHERE r.due_at IS NOT NULL AND r.state NOT IN ('pending', 'degraded', 'deleted')
          GROUP BY r.namespace, r.kind, r.state
          UNION ALL
          SELECT r.namespace, r.kind, r.state, count(*) FROM delta.resource AS r
          WHERE r.state = 'pending'
          GROUP BY r.namespace, r.kind, r.state
          UNION ALL
          SELECT r.namespace, r.kind, r.state, count(*) FROM delta.resource AS r
          WHERE r.state IN ('degraded', 'deleted')
          GROUP BY r.namespace, r.kind, r.state) AS u
    GROUP BY u.namespace, u.kind, u.state
), recent AS (
    SELECT h.namespace, h.kind, h.outcome, h.duration FROM delta.run AS h
    WHERE h.ended_at > now() - interval '5 minutes'
)
SELECT 'delta_resources'::text AS metric, coalesce(g.namespace, live.namespace) AS namespace,
       coalesce(g.kind, live.kind) AS kind, coalesce(g.state, live.state)::text AS state,
       NULL::text AS outcome, coalesce(live.n, 0)::float8 AS value
FROM (SELECT cell.namespace, cell.kind, s.state
      FROM cell CROSS JOIN unnest(enum_range(NULL::delta.resource_state)) AS s(state)
      WHERE s.state <> 'synced') AS g
FULL JOIN live ON live.namespace = g.namespace AND live.kind = g.kind AND live.state = g.state
UNION ALL
SELECT 'delta_oldest_due_age_seconds', n.name, NULL, NULL, NULL,
       coalesce(extract(epoch FROM now() - (SELECT min(r.due_at) FROM delta.resource AS r
                                            WHERE r.namespace = n.name AND r.due_at IS NOT NULL
                                              AND r.due_at <= now())), 0)::float8
FROM delta.namespace AS n
UNION ALL
SELECT 'delta_runs_total', NULL, NULL, NULL, c.outcome, c.runs::float8
FROM delta._run_counters() AS c
UNION ALL
SELECT 'delta_runs_failed_last_minute', g.namespace, g.kind, NULL, g.outcome, count(h.outcome)::float8
FROM (SELECT cell.namespace, cell.kind, o.outcome
      FROM cell CROSS JOIN unnest(ARRAY['failed', 'degraded', 'crashed']) AS o(outcome)) AS g
LEFT JOIN delta.run AS h
       ON h.namespace = g.namespace AND h.kind = g.kind AND h.outcome = g.outcome
      AND h.outcome IN ('failed', 'degraded', 'crashed') AND h.ended_at > now() - interval '1 minute'
GROUP BY g.namespace, g.kind, g.outcome
UNION ALL
SELECT m.metric, recent.namespace, recent.kind, NULL, NULL,
       CASE m.metric
           WHEN 'delta_run_duration_avg_seconds' THEN avg(extract(epoch FROM recent.duration))
           WHEN 'delta_run_duration_max_seconds' THEN max(extract(epoch FROM recent.duration))
           ELSE percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM recent.duration))
       END::float8
FROM recent
CROSS JOIN unnest(ARRAY['delta_run_duration_avg_seconds', 'delta_run_duration_max_seconds',
                        'delta_run_duration_p95_seconds']) AS m(metric)
WHERE recent.duration IS NOT NULL
GROUP BY m.metric, recent.namespace, recent.kind;

COMMENT ON VIEW delta.metrics IS 'Prometheus-style figures (metric, labels, value): resources by state without reading synced ones, oldest due age, runs by outcome, recent failures and durations';
