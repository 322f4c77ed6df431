----------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but the schema and the two functions a work
-- function calls; see README "Privileges" for what an application role needs.
----------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA delta FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA delta FROM PUBLIC;
GRANT USAGE ON SCHEMA delta TO PUBLIC;
GRANT EXECUTE ON FUNCTION delta.resource_delete(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION delta.resource_snooze(interval) TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('delta.namespace', '');
SELECT pg_catalog.pg_extension_config_dump('delta.controller', '');
SELECT pg_catalog.pg_extension_config_dump('delta.resource', '');
SELECT pg_catalog.pg_extension_config_dump('delta.inform_run', '');
SELECT pg_catalog.pg_extension_config_dump('delta.event', '');
SELECT pg_catalog.pg_extension_config_dump('delta.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('delta.run', '');
SELECT pg_catalog.pg_extension_config_dump('delta.resource_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('delta.event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('delta.subscription_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('delta.run_id_seq', '');
