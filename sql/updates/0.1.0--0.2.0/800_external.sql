-- 800: external workers (delta.claim): controllers without a work function,
-- the claims table, and _claim with a kinds filter; the functions come with
-- the re-run of sql/src/.
ALTER TABLE delta.controller ALTER COLUMN work DROP NOT NULL;
DROP FUNCTION delta._claim(text, integer);

-- The claims of external workers (delta.claim): one row per resource an
-- external worker holds, deleted when its run ends (delta.complete and the
-- others, the rescue, delta.cancel).  The token names the claim; attempt is
-- the resource's attempt it counted, so a token of an older claim can never
-- end a newer one.  lease NULL: held by the claiming session (the
-- resource's holder_pid); else held until lease_until, which
-- delta.heartbeat moves on.  Not dumped: a restored claim is rescued.
CREATE TABLE delta.external_claim (
    token        uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    resource_id  bigint NOT NULL UNIQUE REFERENCES delta.resource (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    role         regrole NOT NULL,
    lease        interval,
    lease_until  timestamptz,
    claimed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT external_claim_lease_valid CHECK ((lease IS NULL) = (lease_until IS NULL))
);
-- Expired leases, for the rescue.
CREATE INDEX external_claim_lease_idx ON delta.external_claim (lease_until)
    WHERE lease_until IS NOT NULL;
