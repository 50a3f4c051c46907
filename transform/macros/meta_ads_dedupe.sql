{#-
    Rows of `relation_name` (a CTE over the raw table `raw_relation`) that are the latest version
    of their key: the latest load wins (`_loaded_at`, then `_load_sequence`), and a key whose
    latest version is a deletion (`_sdc_deleted_at`) disappears.

    When the raw table has a primary key (target-postgres creates one on the stream's key and
    upserts, so a re-extracted row replaces the old one) Postgres already guarantees one row per
    key and only deleted rows are filtered out: deduplicating again would cost a self-join of
    the whole table on every run. Without one (e.g. load_method append-only) the latest version
    is kept with NOT EXISTS rather than row_number(), so that a filter the caller puts on the
    result (an incremental model's `_loaded_at > <high-water mark>`) still reaches the raw scan:
    filtering by load time first and deduplicating second gives the same rows, because the latest
    version of a key is the one loaded last. The CTE must be `as not materialized`.
-#}
{% macro meta_ads_latest_per_key(relation_name, key_columns, raw_relation) %}
    {%- if meta_ads_has_primary_key(raw_relation) %}
    select {{ relation_name }}.*
    from {{ relation_name }}
    where {{ relation_name }}._sdc_deleted_at is null
    {%- else %}
    select {{ relation_name }}.*
    from {{ relation_name }}
    where
        {{ relation_name }}._sdc_deleted_at is null
        and not exists (
            select 1
            from {{ relation_name }} as newer
            where
                {%- for key in key_columns %}
                newer.{{ key }} = {{ relation_name }}.{{ key }} and
                {%- endfor %}
                (newer._loaded_at, newer._load_sequence)
                > ({{ relation_name }}._loaded_at, {{ relation_name }}._load_sequence)
        )
    {%- endif %}
{% endmacro %}


{#- Whether the raw table has a primary key (false at parse time and for a missing table). -#}
{% macro meta_ads_has_primary_key(relation) %}
    {%- if not execute or relation is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select count(*)
        from pg_catalog.pg_index as idx
        inner join pg_catalog.pg_class as tbl on idx.indrelid = tbl.oid
        inner join pg_catalog.pg_namespace as nsp on tbl.relnamespace = nsp.oid
        where
            idx.indisprimary
            and nsp.nspname = '{{ relation.schema }}'
            and tbl.relname = '{{ relation.identifier }}'
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] > 0) }}
{% endmacro %}
