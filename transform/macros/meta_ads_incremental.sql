{#-
    Incremental strategy `key_range_delete_insert`: dbt's delete+insert, plus a redundant
    predicate that lets Postgres find the rows to replace through the primary-key index instead
    of scanning the whole mart:

        delete from <mart> where key in (select key from <new rows>) and key >= '<min new key>'

    The marts' keys start with the date (yyyymmdd-md5), so '<min new key>' cuts the delete down to
    the dates being replaced (the last 29 days on a daily sync) and inserts land at the "recent"
    end of the index. The minimum is read from the new rows and inlined as a literal, so the
    planner can estimate the range (a parameter would be estimated at a third of the table).
-#}
{% macro get_incremental_key_range_delete_insert_sql(arg_dict) %}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- if unique_key is not string -%}
        {{ exceptions.raise_compiler_error(
            'key_range_delete_insert needs a single unique_key column, got ' ~ unique_key
        ) }}
    {%- endif -%}
    {%- set predicates = (arg_dict['incremental_predicates'] or []) | list -%}
    {%- set lowest_query -%}
        select min({{ adapter.quote(unique_key) }}) from {{ source }}
    {%- endset -%}
    {%- set lowest = run_query(lowest_query).columns[0].values()[0] -%}
    {%- if lowest is not none -%}
        {%- do predicates.append(
            'DBT_INTERNAL_DEST.' ~ adapter.quote(unique_key) ~ " >= '"
            ~ (lowest | replace("'", "''")) ~ "'"
        ) -%}
    {%- endif -%}
    {{ return(get_delete_insert_merge_sql(
        target, source, unique_key, arg_dict['dest_columns'], predicates
    )) }}
{% endmacro %}
