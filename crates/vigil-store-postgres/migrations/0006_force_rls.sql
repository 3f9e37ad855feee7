-- Row-level security holds for the tables' owner too. Until now the owner (the role Vigil
-- connects as) bypassed the policies, so a platform query that forgot its filter saw every
-- tenant. From here every tenant table FORCEs its policies, and the owner sees rows only
-- (a) in a tenant transaction (vigil.tenant_id set, as vigil_app), or (b) in a platform
-- transaction that says so: `vigil.platform = 'on'`, set LOCAL by the store's
-- `begin_platform` and nowhere else. vigil_app can never use (b): that policy names the
-- owner role only. Superusers still bypass RLS, as PostgreSQL always lets them: run Vigil
-- as an ordinary role that owns its schema.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind = 'r' AND c.relrowsecurity
    LOOP
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY platform_operations ON %I TO %I
                 USING (current_setting(''vigil.platform'', true) = ''on'')
                 WITH CHECK (current_setting(''vigil.platform'', true) = ''on'')',
            t, current_user);
    END LOOP;
END
$$;
