{#-
    meta_insights_daily and meta_insights_levels tell the same story for the default attribution
    window without breakdowns:
    - every levels row that comes from a report (all campaign/adset/ad rows, account rows with
      metrics_source = 'report') has the daily row of the same object, day and action_report_time,
      with the same impressions, reach, clicks, link_clicks, spend, conversions and
      conversion_value;
    - every object-day of daily (default window, no breakdowns) has its levels row (levels keeps
      one action_report_time per object-day, so this side ignores it).
    Returns the offending rows with what is wrong. With var meta_test_scope = recent, only the
    account-days touched by this run's loads are checked (as assert_levels_reconcile_across_levels).
-#}

with

{% if var('meta_test_scope', 'all') == 'recent' -%}
    recent_account_days as (
        select
            recent.tenant_id,
            recent.ad_account_id,
            recent.date
        from {{ ref('meta_insights_levels') }} as recent
        where
            recent._loaded_at
            >= now() - interval '{{ var("meta_test_recent_hours", 24) | int }} hours'
    ),

{% endif -%}
levels as (
    select * from {{ ref('meta_insights_levels') }}
    {% if var('meta_test_scope', 'all') == 'recent' -%}
        where (tenant_id, ad_account_id, date) in (select * from recent_account_days)
    {%- endif %}
),

all_windows as (
    select * from {{ ref('meta_insights_daily') }}
    {% if var('meta_test_scope', 'all') == 'recent' -%}
        where (tenant_id, ad_account_id, date) in (select * from recent_account_days)
    {%- endif %}
),

daily as (
    select * from all_windows
    where
        attribution_window = 'default'
        and breakdowns = '{}'::jsonb
),

reported_levels as (
    select * from levels
    where level <> 'account' or metrics_source = 'report'
),

levels_against_daily as (
    select
        reported_levels.tenant_id,
        reported_levels.ad_account_id,
        reported_levels.date,
        reported_levels.level,
        reported_levels.object_id,
        case
            when daily.insights_daily_id is null then 'no daily row'
            else 'metrics differ'
        end as problem,
        reported_levels.spend as levels_spend,
        daily.spend as daily_spend,
        reported_levels.impressions as levels_impressions,
        daily.impressions as daily_impressions
    from reported_levels
    left join daily
        on
            reported_levels.tenant_id = daily.tenant_id
            and reported_levels.ad_account_id = daily.ad_account_id
            and reported_levels.date = daily.date
            and reported_levels.level = daily.level
            and reported_levels.object_id = daily.object_id
            and reported_levels.action_report_time = daily.action_report_time
    where
        daily.insights_daily_id is null
        or reported_levels.impressions is distinct from daily.impressions
        or reported_levels.reach is distinct from daily.reach
        or reported_levels.clicks is distinct from daily.clicks
        or reported_levels.link_clicks is distinct from daily.link_clicks
        or reported_levels.spend is distinct from daily.spend
        or reported_levels.conversions is distinct from daily.conversions
        or reported_levels.conversion_value is distinct from daily.conversion_value
),

daily_against_levels as (
    select
        daily.tenant_id,
        daily.ad_account_id,
        daily.date,
        daily.level,
        daily.object_id,
        'no levels row' as problem,
        null::numeric as levels_spend,
        daily.spend as daily_spend,
        null::bigint as levels_impressions,
        daily.impressions as daily_impressions
    from daily
    where not exists (
        select 1
        from levels
        where
            levels.tenant_id = daily.tenant_id
            and levels.ad_account_id = daily.ad_account_id
            and levels.date = daily.date
            and levels.level = daily.level
            and levels.object_id = daily.object_id
    )
),

final as (
    select * from levels_against_daily
    union all
    select * from daily_against_levels
)

select * from final
