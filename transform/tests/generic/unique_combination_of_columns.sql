{#-
    The combination of columns is unique (nulls compare equal, so a null tenant_id cannot hide a
    duplicate). Like dbt_utils.unique_combination_of_columns, which cannot be fetched here.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (

    select
        {{ combination_of_columns | join(",\n        ") }},
        count(*) as n_records
    from {{ model }}
    group by {{ combination_of_columns | join(", ") }}
    having count(*) > 1

)

select * from grouped

{% endtest %}
