{#-
    Additive metrics reconcile across levels, per tenant, account and day, to the cent:
    sum(ad) = sum(adset) = sum(campaign) = account for spend, impressions and clicks.
    A level with no rows that day is not compared (meta_insights_coverage checks missing levels).
    Returns the offending (day, level) pairs. With var meta_test_scope = recent, only the
    account-days touched by this run's loads are checked (see macros/get_where_subquery.sql).
-#}

with

levels as (
    select * from {{ ref('meta_insights_levels') }}
    {% if var('meta_test_scope', 'all') == 'recent' -%}
        where (tenant_id, ad_account_id, date) in (
            select
                recent.tenant_id,
                recent.ad_account_id,
                recent.date
            from {{ ref('meta_insights_levels') }} as recent
            where
                recent._loaded_at
                >= now() - interval '{{ var("meta_test_recent_hours", 24) | int }} hours'
        )
    {%- endif %}
),

level_totals as (
    select
        tenant_id,
        ad_account_id,
        date,
        level,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(clicks) as clicks
    from levels
    group by 1, 2, 3, 4
),

compared as (
    select
        level_totals.tenant_id,
        level_totals.ad_account_id,
        level_totals.date,
        level_totals.level,
        level_totals.spend,
        account_totals.spend as account_spend,
        level_totals.impressions,
        account_totals.impressions as account_impressions,
        level_totals.clicks,
        account_totals.clicks as account_clicks
    from level_totals
    left join level_totals as account_totals
        on
            level_totals.tenant_id = account_totals.tenant_id
            and level_totals.ad_account_id = account_totals.ad_account_id
            and level_totals.date = account_totals.date
            and account_totals.level = 'account'
    where level_totals.level <> 'account'
)

select *
from compared
where
    account_spend is null
    or round(spend, 2) <> round(account_spend, 2)
    or impressions <> account_impressions
    or clicks <> account_clicks
