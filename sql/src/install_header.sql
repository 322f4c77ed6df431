-- delta @VERSION@: the whole install script, built by the Makefile from
-- sql/src/*.sql (do not edit the built file).
--
-- Every object is schema-qualified and every function pins its search_path,
-- so a hostile search_path cannot redirect anything this script or its
-- functions do (PostgreSQL docs, "Security Considerations for Extension
-- Scripts").  Functions whose names start with an underscore are internal:
-- the background workers and tests call them; PUBLIC cannot.

\echo Use "CREATE EXTENSION delta" to load this file. \quit
