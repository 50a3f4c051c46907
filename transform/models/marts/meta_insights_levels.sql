{#-
    Grain: one row per tenant_id, ad_account_id, level (account, campaign, adset, ad), object_id
    and date (insights_level_id is the md5 of those). Default attribution, no breakdowns, one
    report per object-day (int_meta_ads__object_days). Account level is complete: a row for every
    day a report of the account was synced, zeros where Meta returned nothing
    (int_meta_ads__account_days).

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

-- refs of the incremental run only (dbt parses the model as a full refresh):
-- depends_on: {{ ref('stg_meta_ads__insights') }}, {{ ref('int_meta_ads__synced_days') }}
{%- set changed_days_only -%}
    -- the range predicate is redundant with the IN, but Postgres can push it to the raw scan
    where
        date >= (select min(changed_days.date) from changed_days)
        and (tenant_id, ad_account_id, date) in (
            select
                changed_days.tenant_id,
                changed_days.ad_account_id,
                changed_days.date
            from changed_days
        )
{%- endset %}

with

{% if is_incremental() -%}
-- account-days with rows or windows loaded since the last run (the strategy deletes the same)
    -- rows without breakdowns (each has its `default` window here)
    changed_days as (
        {{- meta_ads_account_days_to_rebuild(rows_where="staged.breakdowns = '{}'::jsonb")
            | indent(4) }}
    ),

{% endif -%}
account_rows as (
    select * from {{ ref('int_meta_ads__account_days') }}
    {% if is_incremental() -%}
        {{ changed_days_only | indent(4) }}
    {%- endif %}
),

object_days as (
    select * from {{ ref('int_meta_ads__object_days') }}
    {% if is_incremental() -%}
        {{ changed_days_only | indent(4) }}
    {%- endif %}
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
    from object_days
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
