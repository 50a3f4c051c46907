{#-
    Grain: one row per tenant_id, ad_account_id, date, level, object_id, action_report_time,
    attribution_window and breakdowns (insights_daily_id is the md5 of those).
    Incremental by load time, recomputed per account-day: every account-day touched by rows or
    windows loaded after the latest `_loaded_at` already here is rebuilt from the current staged
    rows (every report, breakdown and attribution window) and replaces all of that account-day's
    rows, so a row a re-sync no longer returned leaves too (a backfill of old dates lands as well).
    `_loaded_at` is the later of the row's load and the load of the latest window covering its
    day, so the high-water mark moves past the windows an incremental run has rebuilt.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='key_range_delete_insert',
        unique_key='insights_daily_id',
        meta_replace_account_days=true,
        on_schema_change='append_new_columns',
        pre_hook="{{ meta_ads_mart_transaction() }}",
        indexes=[
            {'columns': ['_loaded_at']},
            {'columns': ['tenant_id', 'ad_account_id', 'date']},
        ],
    )
}}

-- refs of the incremental run only (dbt parses the model as a full refresh):
-- depends_on: {{ ref('stg_meta_ads__insights') }}

with

-- not materialized: referenced twice, and each reference must keep its filters pushed down
insights as not materialized (
    select * from {{ ref('int_meta_ads__insights_by_window') }}
),

{% if is_incremental() -%}
-- account-days with rows or windows loaded since the last run (the strategy deletes the same)
    changed_days as (
        {{- meta_ads_account_days_to_rebuild() | indent(4) }}
    ),

{% endif -%}
account_days as (
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

-- when the latest window covering each account-day was loaded
synced_days as (
    select
        tenant_id,
        ad_account_id,
        date,
        max(_loaded_at) as _loaded_at
    from {{ ref('int_meta_ads__synced_days') }}
    {%- if is_incremental() %}
        where date_stop >= (select min(changed_days.date) from changed_days)
    {%- endif %}
    group by 1, 2, 3
),

-- Two reports can produce the same grain (e.g. the `default` window of two reports that differ
-- only in their extra windows): the latest load wins, then the report name decides.
ranked as (
    select
        account_days.*,
        synced_days._loaded_at as window_loaded_at,
        row_number() over (
            partition by
                account_days.tenant_id,
                account_days.ad_account_id,
                account_days.date,
                account_days.level,
                account_days.object_id,
                account_days.action_report_time,
                account_days.attribution_window,
                account_days.breakdowns
            order by
                account_days._loaded_at desc,
                account_days._load_sequence desc,
                account_days.report_name asc
        ) as grain_rank
    from account_days
    left join synced_days
        on
            account_days.tenant_id = synced_days.tenant_id
            and account_days.ad_account_id = synced_days.ad_account_id
            and account_days.date = synced_days.date
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
        {{ meta_ads_ratio_columns(['ctr', 'cpc', 'cpm']) | indent(8) }},
        cast(conversions as numeric) as conversions,
        cast(conversion_value as numeric) as conversion_value,
        cast(actions_by_type as jsonb) as actions,
        cast(action_values_by_type as jsonb) as action_values,
        cast(extracted_at as timestamptz) as extracted_at,
        cast(greatest(_loaded_at, window_loaded_at) as timestamptz) as _loaded_at
    from ranked
    where grain_rank = 1
)

select * from final
