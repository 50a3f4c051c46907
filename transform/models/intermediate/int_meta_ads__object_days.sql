{#-
    Grain: one row per tenant_id, ad_account_id, level, object_id and date: the `default`
    attribution rows of the reports without breakdowns, one report per object-day.
    Reports without breakdowns at the same level differ only in action_report_time (DECISIONLOG.md
    "One report per object-day"): the first in var('meta_levels_action_report_time_preference')
    is kept, then the report name decides.

    Read by meta_insights_levels and int_meta_ads__account_days. The ranking partitions by the
    whole grain, so a filter on tenant_id, ad_account_id or date (the marts' incremental
    `date >= ...`) still reaches the raw tables through this view.
-#}
{%- set preference = meta_ads_text_array(var('meta_levels_action_report_time_preference')) %}

with

insights as (
    select * from {{ ref('int_meta_ads__insights_by_window') }}
    where
        attribution_window = 'default'
        and breakdowns = '{}'::jsonb
),

ranked as (
    select
        insights.*,
        row_number() over (
            partition by
                insights.tenant_id,
                insights.ad_account_id,
                insights.level,
                insights.object_id,
                insights.date
            order by
                array_position({{ preference }}, insights.action_report_time) asc nulls last,
                insights.report_name asc
        ) as report_rank
    from insights
),

final as (
    select * from ranked
    where report_rank = 1
)

select * from final
