{#-
    md5 of the columns, null-safe (the same idea as dbt_utils.generate_surrogate_key). With
    date_column the key starts with the day (`20261107-<md5>`): keys of recent days sort together,
    which keeps the marts' primary-key index local and the incremental delete a range scan.
-#}
{% macro meta_ads_surrogate_key(columns, date_column=none) -%}
    {%- if date_column is not none -%}
        to_char({{ date_column }}, 'YYYYMMDD') || '-' ||
    {% endif -%}
    md5(
        {%- for column in columns %}
        coalesce(cast({{ column }} as text), '_meta_ads_null_')
        {{- " || '|' ||" if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}


{#-
    High-water mark of an incremental mart: the latest `_loaded_at` already in it, minus
    var('meta_load_lookback_minutes'). Rows loaded after it are (re)processed.
-#}
{% macro meta_ads_loaded_after() -%}
    (
        select
            coalesce(max(this_model._loaded_at), '-infinity'::timestamptz)
            - interval '{{ var("meta_load_lookback_minutes") | int }} minutes'
        from {{ this }} as this_model
    )
{%- endmacro %}


{#- SQL array literal of strings from a list var. -#}
{% macro meta_ads_text_array(values) -%}
    array[{%- for value in values -%}'{{ value }}'{{ ", " if not loop.last }}{%- endfor -%}]::text[]
{%- endmacro %}
