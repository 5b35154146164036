-- The platform admin's list of tenants. Row-level security shows the application one tenant
-- at a time, so the list is read by a definer function; the API allows it to platform:admin
-- only. Paged and ordered here: the sort columns are checked against a fixed set.
CREATE OR REPLACE FUNCTION platform_list_tenants(p_columns text[], p_descending boolean[],
                                                 p_limit integer, p_offset integer)
RETURNS TABLE (id uuid, name text, status text, created_at timestamptz, updated_at timestamptz, total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    ordering text := '';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_columns, 1), 0) LOOP
        IF p_columns[i] NOT IN ('created_at', 'updated_at', 'name', 'status') THEN
            RAISE EXCEPTION 'cannot sort tenants by %', p_columns[i];
        END IF;
        ordering := ordering || format('t.%I %s, ', p_columns[i],
                                       CASE WHEN p_descending[i] THEN 'DESC' ELSE 'ASC' END);
    END LOOP;
    RETURN QUERY EXECUTE format(
        'SELECT t.id, t.name, t.status, t.created_at, t.updated_at, count(*) OVER ()
           FROM tenants t WHERE t.deleted_at IS NULL
          ORDER BY %s t.id ASC LIMIT $1 OFFSET $2', ordering)
        USING p_limit, p_offset;
END
$$;
ALTER FUNCTION platform_list_tenants(text[], boolean[], integer, integer) OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION platform_list_tenants(text[], boolean[], integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_list_tenants(text[], boolean[], integer, integer) TO stratus_app;

CREATE OR REPLACE FUNCTION platform_count_tenants() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT count(*) FROM tenants WHERE deleted_at IS NULL $$;
ALTER FUNCTION platform_count_tenants() OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION platform_count_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform_count_tenants() TO stratus_app;
