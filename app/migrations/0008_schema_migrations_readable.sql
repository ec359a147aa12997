-- The service runs without DDL rights and waits until the migration Job has applied the schema of
-- its build: it needs to read which migrations are applied.
GRANT SELECT ON schema_migrations TO knhk_service;
