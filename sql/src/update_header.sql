-- delta @FROM@ → @VERSION@, built by the Makefile: the schema steps of
-- sql/updates/@FROM@--@VERSION@/, then every function and view of
-- sql/src/ again as CREATE OR REPLACE, then the privileges.

\echo Use "ALTER EXTENSION delta UPDATE TO '@VERSION@'" to load this file. \quit
