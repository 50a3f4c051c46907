{#-
    Grain: one row per staged insights row (report, account, day, level, object, breakdowns) and
    attribution window: `default` (the `value` of each action: Meta's default attribution) plus
    every window the report requested (`attribution_windows`, e.g. 1d_view, 7d_click).

    actions / action_values become {action_type: number} objects for the window; an action without
    a value for the window is left out. conversions / conversion_value sum the action types in
    var('meta_conversion_action_types').

    Kept to one level of joins and no GROUP BY so Postgres can push a marts' `_loaded_at` filter
    through this view and the staging view down to the raw tables.
-#}
{%- set conversion_types = meta_ads_text_array(var('meta_conversion_action_types')) %}

with

insights as (
    select * from {{ ref('stg_meta_ads__insights') }}
),

by_window as (
    select
        insights.*,
        windows.attribution_window
    from insights
    cross join
        lateral (
            select 'default' as attribution_window
            union all
            select requested.value as attribution_window
            from
                jsonb_array_elements_text(
                    case
                        when jsonb_typeof(insights.attribution_windows) = 'array'
                            then insights.attribution_windows
                        else '[]'::jsonb
                    end
                ) as requested
            where requested.value <> 'default'
        ) as windows
),

with_actions as (
    select
        by_window.*,
        action_counts.actions_by_type,
        action_counts.conversions,
        action_amounts.action_values_by_type,
        action_amounts.conversion_value
    from by_window
    cross join
        lateral (
            {{ meta_ads_actions_for_window(
                'by_window.actions', 'actions_by_type', 'conversions', conversion_types
            ) }}
        ) as action_counts
    cross join
        lateral (
            {{ meta_ads_actions_for_window(
                'by_window.action_values',
                'action_values_by_type',
                'conversion_value',
                conversion_types
            ) }}
        ) as action_amounts
),

final as (
    select
        tenant_id,
        ad_account_id,
        report_name,
        level,
        object_id,
        date,
        action_report_time,
        attribution_window,
        breakdowns,
        account_name,
        currency,
        campaign_id,
        campaign_name,
        adset_id,
        adset_name,
        ad_id,
        ad_name,
        impressions,
        reach,
        clicks,
        link_clicks,
        spend,
        frequency,
        actions_by_type,
        action_values_by_type,
        conversions,
        conversion_value,
        extracted_at,
        _loaded_at,
        _load_sequence
    from with_actions
)

select * from final
