{#-
    One attribution window of Meta's `actions` / `action_values` list (jsonb array of
    {action_type, value, <window>: n}): a jsonb map action_type -> value for the row's
    `attribution_window` ('default' reads `value`) and the sum over the conversion action types.
    Used inside `cross join lateral (...)` where `by_window.attribution_window` is in scope.
-#}
{% macro meta_ads_actions_for_window(list_column, by_type_alias, total_alias, conversion_types) %}
    select
        coalesce(
            jsonb_object_agg(unnested.action_type, unnested.action_value)
            filter (where unnested.action_value is not null),
            '{}'::jsonb
        ) as {{ by_type_alias }},
        coalesce(
            sum(unnested.action_value)
            filter (where unnested.action_type = any({{ conversion_types }})),
            0
        ) as {{ total_alias }}
    from (
        select
            action_items.value ->> 'action_type' as action_type,
            cast(
                action_items.value ->> case
                    when by_window.attribution_window = 'default' then 'value'
                    else by_window.attribution_window
                end
                as numeric
            ) as action_value
        from
            jsonb_array_elements(
                case
                    when jsonb_typeof({{ list_column }}) = 'array'
                        then {{ list_column }}
                    else '[]'::jsonb
                end
            ) as action_items
        where action_items.value ->> 'action_type' is not null
    ) as unnested
{% endmacro %}
