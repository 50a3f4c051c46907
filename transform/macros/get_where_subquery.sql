{#-
    Data tests of the marts carry `where: __meta_recent_loads__` (dbt_project.yml). By default
    (var meta_test_scope: all) the placeholder is `true` and the tests read the whole mart, as in
    CI and `make test`. With `--vars '{meta_test_scope: recent}'` (the scheduled sync/backfill
    builds) they read only the rows loaded in the last var('meta_test_recent_hours') hours, i.e.
    this run's loads, so a daily build does not re-scan years of history. Models without a
    `_loaded_at` column are always tested in full.
    This overrides dbt's own get_where_subquery, which is the documented hook for it.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') or '' -%}
    {%- if '__meta_recent_loads__' in where -%}
        {%- set scope = 'true' -%}
        {%- if var('meta_test_scope', 'all') == 'recent' and execute -%}
            {%- set names = adapter.get_columns_in_relation(relation)
                | map(attribute='name') | map('lower') | list -%}
            {%- if '_loaded_at' in names -%}
                {%- set scope -%}
                    _loaded_at >= now() - interval '{{ var("meta_test_recent_hours", 24) | int }} hours'
                {%- endset -%}
            {%- endif -%}
        {%- endif -%}
        {%- set where = where | replace('__meta_recent_loads__', scope) -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') as dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
