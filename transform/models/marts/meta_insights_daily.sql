{#-
    Grain: one row per tenant_id, ad_account_id, date, level, object_id, action_report_time,
    attribution_window and breakdowns (insights_daily_id is the md5 of those).
    Incremental by load time: rows loaded after the latest `_loaded_at` already here replace their
    old version (a backfill of old dates lands too, not only new dates).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='key_range_delete_insert',
        unique_key='insights_daily_id',
        on_schema_change='append_new_columns',
        pre_hook="set local jit = off",
        indexes=[
            {'columns': ['_loaded_at']},
            {'columns': ['tenant_id', 'ad_account_id', 'date']},
        ],
    )
}}

with

insights as (
    select * from {{ ref('int_meta_ads__insights_by_window') }}
    {% if is_incremental() -%}
        where _loaded_at > {{ meta_ads_loaded_after() }}
    {%- endif %}
),

-- Two reports can produce the same grain (e.g. the `default` window of two reports that differ
-- only in their extra windows): the latest load wins, then the report name decides.
ranked as (
    select
        insights.*,
        row_number() over (
            partition by
                tenant_id, ad_account_id, date, level, object_id,
                action_report_time, attribution_window, breakdowns
            order by _loaded_at desc, _load_sequence desc, report_name asc
        ) as grain_rank
    from insights
),

final as (
    select
        cast({{ meta_ads_surrogate_key([
            'tenant_id', 'ad_account_id', 'date', 'level', 'object_id',
            'action_report_time', 'attribution_window', 'breakdowns',
        ], date_column='date') }} as text) as insights_daily_id,
        cast(tenant_id as text) as tenant_id,
        cast(ad_account_id as text) as ad_account_id,
        cast(date as date) as date,
        cast(level as text) as level,
        cast(object_id as text) as object_id,
        cast(action_report_time as text) as action_report_time,
        cast(attribution_window as text) as attribution_window,
        cast(breakdowns as jsonb) as breakdowns,
        cast(report_name as text) as report_name,
        cast(account_name as text) as account_name,
        cast(campaign_id as text) as campaign_id,
        cast(campaign_name as text) as campaign_name,
        cast(adset_id as text) as adset_id,
        cast(adset_name as text) as adset_name,
        cast(ad_id as text) as ad_id,
        cast(ad_name as text) as ad_name,
        cast(currency as text) as currency,
        cast(coalesce(impressions, 0) as bigint) as impressions,
        cast(reach as bigint) as reach,
        cast(coalesce(clicks, 0) as bigint) as clicks,
        cast(coalesce(link_clicks, 0) as bigint) as link_clicks,
        cast(coalesce(spend, 0) as numeric) as spend,
        cast(
            case when impressions > 0 then round(100.0 * clicks / impressions, 6) end as numeric
        ) as ctr,
        cast(case when clicks > 0 then round(spend / clicks, 6) end as numeric) as cpc,
        cast(
            case when impressions > 0 then round(1000.0 * spend / impressions, 6) end as numeric
        ) as cpm,
        cast(conversions as numeric) as conversions,
        cast(conversion_value as numeric) as conversion_value,
        cast(actions_by_type as jsonb) as actions,
        cast(action_values_by_type as jsonb) as action_values,
        cast(extracted_at as timestamptz) as extracted_at,
        cast(_loaded_at as timestamptz) as _loaded_at
    from ranked
    where grain_rank = 1
)

select * from final
