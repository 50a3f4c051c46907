{#-
    Grain: one row per tenant_id, ad_account_id and level of meta_insights_levels.
    The playbook's "count / first / last date per account", plus completeness over the days the tap
    actually synced (int_meta_ads__synced_days):
    - account level: every synced day (of any report) must have a row (zero-filled if no delivery);
    - campaign/adset/ad level: every day a report of that level synced and the account delivered
      (account row has_delivery) must have at least one row of that level.
    missing_days counts the days breaking that rule; a test keeps it at 0.
    A table (the marts' default), rebuilt on every run: one scan of meta_insights_levels, after
    which its tests and the CLI's verification read a few hundred rows.
-#}

with

levels as (
    select * from {{ ref('meta_insights_levels') }}
),

window_days as (
    select * from {{ ref('int_meta_ads__synced_days') }}
),

synced_days as (
    select distinct
        tenant_id,
        ad_account_id,
        level,
        date
    from window_days
    where level in ('campaign', 'adset', 'ad')
    union
    select distinct
        tenant_id,
        ad_account_id,
        'account' as level,
        date
    from window_days
),

delivery_days as (
    select
        tenant_id,
        ad_account_id,
        date
    from levels
    where level = 'account' and has_delivery
),

level_days as (
    select distinct
        tenant_id,
        ad_account_id,
        level,
        date
    from levels
),

expected_days as (
    select synced_days.*
    from synced_days
    left join delivery_days
        on
            synced_days.tenant_id = delivery_days.tenant_id
            and synced_days.ad_account_id = delivery_days.ad_account_id
            and synced_days.date = delivery_days.date
    where synced_days.level = 'account' or delivery_days.date is not null
),

missing_days as (
    select
        expected_days.tenant_id,
        expected_days.ad_account_id,
        expected_days.level,
        count(*) as missing_days,
        min(expected_days.date) as first_missing_date,
        (array_agg(expected_days.date order by expected_days.date))[1:20] as missing_dates
    from expected_days
    left join level_days
        on
            expected_days.tenant_id = level_days.tenant_id
            and expected_days.ad_account_id = level_days.ad_account_id
            and expected_days.level = level_days.level
            and expected_days.date = level_days.date
    where level_days.date is null
    group by 1, 2, 3
),

synced_summary as (
    select
        tenant_id,
        ad_account_id,
        level,
        count(*) as synced_days,
        min(date) as first_synced_date,
        max(date) as last_synced_date
    from synced_days
    group by 1, 2, 3
),

level_summary as (
    select
        tenant_id,
        ad_account_id,
        level,
        count(*) as rows,  -- noqa: RF04
        count(distinct date) as days_with_rows,
        min(date) as first_date,
        max(date) as last_date,
        sum(spend) as spend,
        max(_loaded_at) as last_loaded_at
    from levels
    group by 1, 2, 3
),

final as (
    select
        coalesce(level_summary.tenant_id, synced_summary.tenant_id) as tenant_id,
        coalesce(level_summary.ad_account_id, synced_summary.ad_account_id) as ad_account_id,
        coalesce(level_summary.level, synced_summary.level) as level,
        coalesce(level_summary.rows, 0) as rows,  -- noqa: RF04
        level_summary.first_date,
        level_summary.last_date,
        coalesce(level_summary.days_with_rows, 0) as days_with_rows,
        coalesce(synced_summary.synced_days, 0) as synced_days,
        synced_summary.first_synced_date,
        synced_summary.last_synced_date,
        coalesce(missing_days.missing_days, 0) as missing_days,
        missing_days.first_missing_date,
        missing_days.missing_dates,
        coalesce(level_summary.spend, 0) as spend,
        level_summary.last_loaded_at
    from level_summary
    full outer join synced_summary
        on
            level_summary.tenant_id = synced_summary.tenant_id
            and level_summary.ad_account_id = synced_summary.ad_account_id
            and level_summary.level = synced_summary.level
    left join missing_days
        on
            coalesce(level_summary.tenant_id, synced_summary.tenant_id) = missing_days.tenant_id
            and coalesce(level_summary.ad_account_id, synced_summary.ad_account_id)
            = missing_days.ad_account_id
            and coalesce(level_summary.level, synced_summary.level) = missing_days.level
)

select * from final
