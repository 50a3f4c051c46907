{#-
    Planner statistics that keep up with the loads.

    A build runs seconds after a load, and its models and tests join tables that the load or the
    model itself has just filled. PostgreSQL's autovacuum analyzes a table once more than
    50 rows + 10 % of it changed, but only at its next round (autovacuum_naptime, a minute by
    default), and never where it is off. Until then the planner knows nothing of the new rows:
    after a first backfill it took a freshly filled mart for one row and planned a nested loop
    that ran assert_daily_reconciles_with_levels in 69 s instead of 0.3 s.

    meta_ads_analyze_stale(schema_name, table_name=none) analyzes, at once, the tables of the
    schema (or the one table) past autovacuum's own threshold, counting the changes of the
    current transaction too (a model's post-hook runs in the model's transaction, before its
    commit reports them). On a daily run that changes a few percent of a table it analyzes
    nothing, so the scheduled build pays one catalog query per call.
-#}
{% macro meta_ads_analyze_stale(schema_name, table_name=none) %}
do $meta_ads_analyze$
declare
    stale record;
begin
    for stale in
        select format('%I.%I', tables.schemaname, tables.relname) as name
        from pg_stat_user_tables as tables
        left join pg_stat_xact_user_tables as pending on tables.relid = pending.relid
        where
            tables.schemaname = {{ dbt.string_literal(schema_name) }}
            {% if table_name -%}
                and tables.relname = {{ dbt.string_literal(table_name) }}
            {%- endif %}
            and tables.n_mod_since_analyze
            + coalesce(pending.n_tup_ins + pending.n_tup_upd + pending.n_tup_del, 0)
            > 50 + 0.1 * (tables.n_live_tup + coalesce(pending.n_tup_ins, 0))
    loop
        execute 'analyze ' || stale.name;
    end loop;
end
$meta_ads_analyze$
{% endmacro %}
