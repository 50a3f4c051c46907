{#-
    Reading the raw tables target-postgres writes.

    The tap's streams evolve (a report gains a breakdown column, an older load lacks `reach`).
    Staging therefore reads the raw tables through these macros: every column of a fixed spec is
    selected with an explicit cast, or as a typed NULL when the raw table lacks it. A missing
    dimension or insights_windows table (a fresh database) yields an empty, typed result; a missing
    table of a configured insights report (var meta_insights_reports) fails the run, as reading it
    as empty would build marts without that report and pass every test.
-#}

{#-
    The raw schema: var meta_raw_schema, else env TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA (what
    target-postgres writes to, Meltano's variable for its setting), else raw_meta.
-#}
{% macro meta_ads_raw_schema() %}
    {{ return(var(
        'meta_raw_schema',
        env_var('TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA', 'raw_meta'),
    )) }}
{% endmacro %}


{#-
    The raw schema's relations read into dbt's relation cache at once, before any model runs
    (on-run-start). dbt caches the schemas of the models it builds when a run starts, not the
    raw schema, which it lists on its first lookup (adapter.list_relations): that lists the
    schema, then adds its tables to the cache one by one, and the schema counts as cached from
    the first. With two threads, a staging model looking up its raw table in that moment found
    the cache part-filled and the table missing, and its view was built reading nothing
    (seen on a loaded machine: `raw table raw_meta.ads does not exist; it is read as empty`,
    24 s after the load had written it, and the marts without ad names). Hooks run on one
    thread.
-#}
{% macro meta_ads_cache_raw_relations() %}
    {%- if execute -%}
        {%- do adapter.get_relation(
            database=target.database, schema=meta_ads_raw_schema(), identifier='accounts',
        ) -%}
    {%- endif -%}
{% endmacro %}


{#- The relation of a raw table, or none when it does not exist (or at parse time). -#}
{% macro meta_ads_raw_relation(table_name, required_by=none) %}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set relation = adapter.get_relation(
        database=target.database,
        schema=meta_ads_raw_schema(),
        identifier=table_name,
    ) -%}
    {%- if relation is none and required_by -%}
        {{ exceptions.raise_compiler_error(
            "meta_ads: raw table " ~ meta_ads_raw_schema() ~ "." ~ table_name ~ " of "
            ~ required_by ~ " does not exist. Load the report first (meta-elt backfill / sync, "
            ~ "or meltano run with the tap's `reports` setting listing it), or remove it from "
            ~ "var meta_insights_reports (dbt_project.yml or --vars)."
        ) }}
    {%- elif relation is none -%}
        {{ log(
            "meta_ads: raw table " ~ meta_ads_raw_schema() ~ "." ~ table_name
            ~ " does not exist; it is read as empty",
            info=true,
        ) }}
    {%- endif -%}
    {{ return(relation) }}
{% endmacro %}


{#-
    The insights report tables of var meta_insights_reports: [{'name': report, 'relation': ...}];
    a missing table is an error (empty list at parse time, when nothing is read).
-#}
{% macro meta_ads_insights_reports() %}
    {%- set reports = [] -%}
    {%- for report in var('meta_insights_reports') -%}
        {%- set relation = meta_ads_raw_relation(
            'insights_' ~ report, required_by="report '" ~ report ~ "' (var meta_insights_reports)"
        ) -%}
        {%- if relation is not none -%}
            {%- do reports.append({'name': report, 'relation': relation}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(reports) }}
{% endmacro %}


{#- One raw column cast to the staging type, whatever type target-postgres gave it. -#}
{% macro meta_ads_cast_raw_column(column, target_type) %}
    {%- set dtype = column.dtype | lower -%}
    {%- set name = adapter.quote(column.name) -%}
    {%- if target_type == 'timestamptz' and dtype == 'timestamp without time zone' -%}
        ({{ name }} at time zone 'UTC')
    {%- elif target_type == 'jsonb' and dtype == 'array' -%}
        to_jsonb({{ name }})
    {%- elif target_type == 'jsonb' and dtype in ('text', 'character varying') -%}
        cast(nullif({{ name }}, '') as jsonb)
    {%- else -%}
        cast({{ name }} as {{ target_type }})
    {%- endif -%}
{% endmacro %}


{#-
    `select <spec columns> from <relation>`; columns is a list of [name, type]. A column the table
    lacks becomes a typed NULL; a missing relation becomes an empty result with the same columns.
-#}
{% macro meta_ads_select_raw(relation, columns) %}
    {%- set existing = {} -%}
    {%- if relation is not none -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do existing.update({column.name | lower: column}) -%}
        {%- endfor -%}
    {%- endif %}
    select
        {%- for name, target_type in columns %}
            {% if name in existing -%}
                {{ meta_ads_cast_raw_column(existing[name], target_type) }}
            {%- else -%}
                cast(null as {{ target_type }})
            {%- endif %} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    {%- if relation is not none %}
    from {{ relation }}
    {%- else %}
    where false
    {%- endif %}
{% endmacro %}


{#- target-postgres metadata columns every staging model reads. -#}
{% macro meta_ads_sdc_columns() %}
    {{ return([
        ['_sdc_extracted_at', 'timestamptz'],
        ['_sdc_batched_at', 'timestamptz'],
        ['_sdc_sequence', 'bigint'],
        ['_sdc_deleted_at', 'timestamptz'],
    ]) }}
{% endmacro %}


{#- `act_<digits>`, whether the raw value is `act_123` or `123`. -#}
{% macro meta_ads_normalise_account_id(column) -%}
    case
        when {{ column }} is null or {{ column }} = '' then null
        else 'act_' || regexp_replace(trim({{ column }}), '^act_', '')
    end
{%- endmacro %}


{#- tenant_id with the null/empty value replaced by var('meta_default_tenant_id'). -#}
{% macro meta_ads_tenant_id(column) -%}
    coalesce(nullif(trim({{ column }}), ''), '{{ var("meta_default_tenant_id") }}')
{%- endmacro %}
