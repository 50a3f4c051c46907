{#-
    Grain: one row per tenant_id, ad_account_id, level (account, campaign, adset, ad), object_id
    and date (insights_level_id is the md5 of those). Default attribution, no breakdowns.
    Account level is complete: a row for every day a report of the account was synced
    (int_meta_ads__synced_days), zeros where Meta returned nothing.

    Incremental by load time, recomputed per account-day: every account-day touched by rows or
    windows loaded after the high-water mark is rebuilt at all levels, because the account row is
    an aggregate of the day's campaign rows (DECISIONLOG.md), and replaces all of that
    account-day's rows (so an object a re-sync no longer returned leaves the mart).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='key_range_delete_insert',
        unique_key='insights_level_id',
        meta_replace_account_days=true,
        on_schema_change='append_new_columns',
        pre_hook="{{ meta_ads_mart_transaction() }}",
        indexes=[
            {'columns': ['_loaded_at']},
            {'columns': ['tenant_id', 'ad_account_id', 'date']},
        ],
    )
}}
{%- set preference = meta_ads_text_array(var('meta_levels_action_report_time_preference')) %}

with

-- not materialized: referenced twice, and each reference must keep its filters pushed down
insights as not materialized (
    select * from {{ ref('int_meta_ads__insights_by_window') }}
    where
        attribution_window = 'default'
        and breakdowns = '{}'::jsonb
),

accounts as (
    select * from {{ ref('stg_meta_ads__accounts') }}
),

-- when the latest window covering each account-day was loaded
synced_days as (
    select
        tenant_id,
        ad_account_id,
        date,
        max(_loaded_at) as _loaded_at
    from {{ ref('int_meta_ads__synced_days') }}
    group by 1, 2, 3
),

{% if is_incremental() -%}
-- account-days with rows or windows loaded since the last run
    changed_days as (
        select
            insights.tenant_id,
            insights.ad_account_id,
            insights.date
        from insights
        where insights._loaded_at > {{ meta_ads_loaded_after() }}
        union
        select
            synced_days.tenant_id,
            synced_days.ad_account_id,
            synced_days.date
        from synced_days
        where synced_days._loaded_at > {{ meta_ads_loaded_after() }}
    ),

{% endif -%}
object_days as (
    select insights.*
    from insights
    {% if is_incremental() -%}
        -- the range predicate is redundant with the IN, but Postgres can push it to the raw scan
        where
            insights.date >= (select min(changed_days.date) from changed_days)
            and (insights.tenant_id, insights.ad_account_id, insights.date) in (
                select
                    changed_days.tenant_id,
                    changed_days.ad_account_id,
                    changed_days.date
                from changed_days
            )
    {%- endif %}
),

-- Reports without breakdowns at the same level differ only in action_report_time: keep one.
chosen as (
    select *
    from (
        select
            object_days.*,
            row_number() over (
                partition by tenant_id, ad_account_id, level, object_id, date
                order by
                    array_position({{ preference }}, action_report_time) asc nulls last,
                    report_name asc
            ) as report_rank
        from object_days
    ) as ranked
    where report_rank = 1
),

-- Account totals from the coarsest level reported that day (campaign, else adset, else ad).
level_totals as (
    select
        tenant_id,
        ad_account_id,
        date,
        level,
        max(account_name) as account_name,
        max(currency) as currency,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(link_clicks) as link_clicks,
        sum(spend) as spend,
        sum(conversions) as conversions,
        sum(conversion_value) as conversion_value,
        max(_loaded_at) as _loaded_at,
        max(extracted_at) as extracted_at,
        row_number() over (
            partition by tenant_id, ad_account_id, date
            order by array_position(array['campaign', 'adset', 'ad']::text[], level)
        ) as level_rank
    from chosen
    where level in ('campaign', 'adset', 'ad')
    group by 1, 2, 3, 4
),

derived_account_days as (
    select * from level_totals
    where level_rank = 1
),

reported_account_days as (
    select * from chosen
    where level = 'account'
),

account_days as (
    select
        tenant_id,
        ad_account_id,
        date
    from synced_days
    {% if is_incremental() -%}
        where (tenant_id, ad_account_id, date) in (
            select
                changed_days.tenant_id,
                changed_days.ad_account_id,
                changed_days.date
            from changed_days
        )
    {%- endif %}
    union
    select
        tenant_id,
        ad_account_id,
        date
    from derived_account_days
    union
    select
        tenant_id,
        ad_account_id,
        date
    from reported_account_days
),

account_rows as (
    select
        account_days.tenant_id,
        account_days.ad_account_id,
        'account' as level,
        account_days.ad_account_id as object_id,
        account_days.date,
        coalesce(
            reported_account_days.account_name,
            derived_account_days.account_name,
            accounts.account_name
        ) as object_name,
        coalesce(
            reported_account_days.account_name,
            derived_account_days.account_name,
            accounts.account_name
        ) as account_name,
        cast(null as text) as campaign_id,
        cast(null as text) as campaign_name,
        cast(null as text) as adset_id,
        cast(null as text) as adset_name,
        cast(null as text) as ad_id,
        cast(null as text) as ad_name,
        coalesce(
            reported_account_days.currency, derived_account_days.currency, accounts.currency
        ) as currency,
        reported_account_days.action_report_time,
        coalesce(reported_account_days.impressions, derived_account_days.impressions, 0)
            as impressions,
        reported_account_days.reach,
        coalesce(reported_account_days.clicks, derived_account_days.clicks, 0) as clicks,
        coalesce(reported_account_days.link_clicks, derived_account_days.link_clicks, 0)
            as link_clicks,
        coalesce(reported_account_days.spend, derived_account_days.spend, 0) as spend,
        coalesce(reported_account_days.conversions, derived_account_days.conversions, 0)
            as conversions,
        coalesce(
            reported_account_days.conversion_value, derived_account_days.conversion_value, 0
        ) as conversion_value,
        case
            when reported_account_days.object_id is not null then 'report'
            when derived_account_days.level is not null
                then 'sum_of_' || derived_account_days.level
            else 'zero_fill'
        end as metrics_source,
        coalesce(reported_account_days.extracted_at, derived_account_days.extracted_at)
            as extracted_at,
        greatest(
            reported_account_days._loaded_at,
            derived_account_days._loaded_at,
            synced_days._loaded_at
        ) as _loaded_at
    from account_days
    left join reported_account_days
        on
            account_days.tenant_id = reported_account_days.tenant_id
            and account_days.ad_account_id = reported_account_days.ad_account_id
            and account_days.date = reported_account_days.date
    left join derived_account_days
        on
            account_days.tenant_id = derived_account_days.tenant_id
            and account_days.ad_account_id = derived_account_days.ad_account_id
            and account_days.date = derived_account_days.date
    left join synced_days
        on
            account_days.tenant_id = synced_days.tenant_id
            and account_days.ad_account_id = synced_days.ad_account_id
            and account_days.date = synced_days.date
    left join accounts
        on
            account_days.tenant_id = accounts.tenant_id
            and account_days.ad_account_id = accounts.ad_account_id
),

object_rows as (
    select
        tenant_id,
        ad_account_id,
        level,
        object_id,
        date,
        case level
            when 'campaign' then campaign_name
            when 'adset' then adset_name
            when 'ad' then ad_name
        end as object_name,
        account_name,
        campaign_id,
        campaign_name,
        adset_id,
        adset_name,
        ad_id,
        ad_name,
        currency,
        action_report_time,
        coalesce(impressions, 0) as impressions,
        reach,
        coalesce(clicks, 0) as clicks,
        coalesce(link_clicks, 0) as link_clicks,
        coalesce(spend, 0) as spend,
        conversions,
        conversion_value,
        'report' as metrics_source,
        extracted_at,
        _loaded_at
    from chosen
    where level in ('campaign', 'adset', 'ad')
),

unioned as (
    select * from account_rows
    union all
    select * from object_rows
),

final as (
    select
        cast({{ meta_ads_surrogate_key([
            'tenant_id', 'ad_account_id', 'level', 'object_id', 'date',
        ], date_column='date') }} as text) as insights_level_id,
        cast(tenant_id as text) as tenant_id,
        cast(ad_account_id as text) as ad_account_id,
        cast(level as text) as level,
        cast(object_id as text) as object_id,
        cast(date as date) as date,
        cast(object_name as text) as object_name,
        cast(account_name as text) as account_name,
        cast(campaign_id as text) as campaign_id,
        cast(campaign_name as text) as campaign_name,
        cast(adset_id as text) as adset_id,
        cast(adset_name as text) as adset_name,
        cast(ad_id as text) as ad_id,
        cast(ad_name as text) as ad_name,
        cast(currency as text) as currency,
        cast(action_report_time as text) as action_report_time,
        cast(impressions as bigint) as impressions,
        cast(reach as bigint) as reach,
        cast(clicks as bigint) as clicks,
        cast(link_clicks as bigint) as link_clicks,
        cast(spend as numeric) as spend,
        cast(conversions as numeric) as conversions,
        cast(conversion_value as numeric) as conversion_value,
        {{ meta_ads_ratio_columns(['ctr', 'cpc', 'cpm', 'frequency']) | indent(8) }},
        cast(impressions > 0 or spend > 0 or clicks > 0 as boolean) as has_delivery,
        cast(metrics_source as text) as metrics_source,
        cast(extracted_at as timestamptz) as extracted_at,
        cast(_loaded_at as timestamptz) as _loaded_at
    from unioned
)

select * from final
