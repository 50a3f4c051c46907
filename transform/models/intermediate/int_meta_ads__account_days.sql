{#-
    Grain: one row per tenant_id, ad_account_id and date: the account-level row of
    meta_insights_levels (DECISIONLOG.md "Account level: derived, zero-filled, reach null").
    - Metrics from an account-level report if one covers the day (metrics_source `report`), else
      the sum of the day's rows of the coarsest level reported that day (`sum_of_campaign`, else
      `sum_of_adset`, else `sum_of_ad`; reach null, as it does not add up), else zeros on a day
      the tap synced (int_meta_ads__synced_days) without rows (`zero_fill`).
    - Name and currency from the rows, else from the tenant's own stg_meta_ads__accounts row.
    - _loaded_at: the latest load of the day's rows and of the windows covering it.

    Every step groups or partitions by (tenant_id, ad_account_id, date) and reads each source once
    (no CTE referenced twice, which Postgres would materialize), so a filter on those columns (the
    mart's incremental `date >= ...`) reaches the raw tables through this view.
-#}
{%- set metrics = [
    'impressions', 'clicks', 'link_clicks', 'spend', 'conversions', 'conversion_value',
] %}

with

-- per tenant, account, day and level: the account report's row, or the sums of a lower level
level_days as (
    select
        tenant_id,
        ad_account_id,
        date,
        level,
        max(account_name) as account_name,
        max(currency) as currency,
        max(action_report_time) as action_report_time,
        {%- for metric in metrics %}
            sum({{ metric }}) as {{ metric }},
        {%- endfor %}
        sum(reach) as reach,
        max(extracted_at) as extracted_at,
        max(_loaded_at) as _loaded_at
    from {{ ref('int_meta_ads__object_days') }}
    group by 1, 2, 3, 4
),

-- the account report's row, and the coarsest lower level reported that day (campaign, else
-- adset, else ad); one pass over level_days, so the rows are read once
ranked_level_days as (
    select
        level_days.*,
        case when level_days.level = 'account' then 'report' else 'derived' end as source,
        row_number() over (
            partition by
                level_days.tenant_id,
                level_days.ad_account_id,
                level_days.date,
                level_days.level = 'account'
            order by array_position(array['campaign', 'adset', 'ad']::text[], level_days.level)
        ) as level_rank
    from level_days
),

day_sources as (
    select
        tenant_id,
        ad_account_id,
        date,
        source,
        level,
        account_name,
        currency,
        case when source = 'report' then action_report_time end as action_report_time,
        {%- for metric in metrics %}
            {{ metric }},
        {%- endfor %}
        case when source = 'report' then reach end as reach,
        extracted_at,
        _loaded_at
    from ranked_level_days
    where level_rank = 1
    union all
    select
        tenant_id,
        ad_account_id,
        date,
        'synced' as source,
        cast(null as text) as level,
        cast(null as text) as account_name,
        cast(null as text) as currency,
        cast(null as text) as action_report_time,
        {%- for metric in metrics %}
            cast(null as numeric) as {{ metric }},
        {%- endfor %}
        cast(null as numeric) as reach,
        cast(null as timestamptz) as extracted_at,
        _loaded_at
    from {{ ref('int_meta_ads__synced_days') }}
),

-- one row per account-day: the report's value, else the derived one (at most one of each)
account_days as (
    select
        tenant_id,
        ad_account_id,
        date,
        bool_or(source = 'report') as has_report,
        max(level) filter (where source = 'derived') as derived_level,
        coalesce(
            max(account_name) filter (where source = 'report'),
            max(account_name) filter (where source = 'derived')
        ) as account_name,
        coalesce(
            max(currency) filter (where source = 'report'),
            max(currency) filter (where source = 'derived')
        ) as currency,
        max(action_report_time) filter (where source = 'report') as action_report_time,
        {%- for metric in metrics %}
            coalesce(
                max({{ metric }}) filter (where source = 'report'),
                max({{ metric }}) filter (where source = 'derived'),
                0
            ) as {{ metric }},
        {%- endfor %}
        max(reach) filter (where source = 'report') as reach,
        coalesce(
            max(extracted_at) filter (where source = 'report'),
            max(extracted_at) filter (where source = 'derived')
        ) as extracted_at,
        max(_loaded_at) as _loaded_at
    from day_sources
    group by 1, 2, 3
),

accounts as (
    select * from {{ ref('stg_meta_ads__accounts') }}
),

final as (
    select
        account_days.tenant_id,
        account_days.ad_account_id,
        'account' as level,
        account_days.ad_account_id as object_id,
        account_days.date,
        coalesce(account_days.account_name, accounts.account_name) as object_name,
        coalesce(account_days.account_name, accounts.account_name) as account_name,
        cast(null as text) as campaign_id,
        cast(null as text) as campaign_name,
        cast(null as text) as adset_id,
        cast(null as text) as adset_name,
        cast(null as text) as ad_id,
        cast(null as text) as ad_name,
        coalesce(account_days.currency, accounts.currency) as currency,
        account_days.action_report_time,
        account_days.impressions,
        account_days.reach,
        account_days.clicks,
        account_days.link_clicks,
        account_days.spend,
        account_days.conversions,
        account_days.conversion_value,
        case
            when account_days.has_report then 'report'
            when account_days.derived_level is not null
                then 'sum_of_' || account_days.derived_level
            else 'zero_fill'
        end as metrics_source,
        account_days.extracted_at,
        account_days._loaded_at
    from account_days
    left join accounts
        on
            account_days.tenant_id = accounts.tenant_id
            and account_days.ad_account_id = accounts.ad_account_id
)

select * from final
