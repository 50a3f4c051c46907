{#-
    Completeness, computed when the test runs (not read from the stored meta_insights_coverage,
    which is only as fresh as its last build): every day the tap synced (a day of
    int_meta_ads__synced_days: the windows of the reports in var('meta_insights_reports')) is in
    the mart.
    Returns the missing (tenant_id, ad_account_id, <by>, date).

    by='level' (meta_insights_levels; the rule of meta_insights_coverage):
      - level `account`: every synced day of any report has a row (zero-filled if no delivery);
      - the level of each report: every synced day on which the account delivered (its
        meta_insights_levels account row has_delivery) has a row of that level.
    by='report_name' (meta_insights_daily): every synced day of each report on which the account
    delivered has a row of that report.

    The mart is read whole (declare the test with `where: "true"`): the expected days are what is
    scoped. Only windows loaded before this dbt invocation started are expected: a run loading
    side by side may commit windows while this build runs, and its own build covers them (runs
    of one database build one at a time; found when three backfills and a sync ran at once). With var meta_test_scope = recent, only days of windows loaded in the last
    var('meta_test_recent_hours') hours are expected (this run's loads).
-#}
{% test covers_synced_days(model, by='level') %}

with

mart as (

    select * from {{ model }}

),

account_rows as (

    select * from {{ ref('meta_insights_levels') }}
    where level = 'account'

),

window_days as (

    select distinct
        synced_days.tenant_id,
        synced_days.ad_account_id,
        synced_days.{{ by }} as expected_in,
        synced_days.date
    from {{ ref('int_meta_ads__synced_days') }} as synced_days
    -- windows another run loaded after this dbt run started are its build's to cover
    where
        synced_days._loaded_at
        <= cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
        {%- if var('meta_test_scope', 'all') == 'recent' %}
            and synced_days._loaded_at
            >= now() - interval '{{ var("meta_test_recent_hours", 24) | int }} hours'
        {%- endif %}

),

expected_days as (

    {% if by == 'level' -%}
    select
        tenant_id,
        ad_account_id,
        'account' as expected_in,
        date
    from window_days
    union
    {% endif -%}
    select window_days.*
    from window_days
    inner join account_rows
        on
            window_days.tenant_id = account_rows.tenant_id
            and window_days.ad_account_id = account_rows.ad_account_id
            and window_days.date = account_rows.date
            and account_rows.has_delivery

)

select
    expected_days.tenant_id,
    expected_days.ad_account_id,
    expected_days.expected_in as {{ by }},
    expected_days.date
from expected_days
where not exists (
    select 1
    from mart
    where
        mart.tenant_id = expected_days.tenant_id
        and mart.ad_account_id = expected_days.ad_account_id
        and mart.date = expected_days.date
        and mart.{{ by }} = expected_days.expected_in
)

{% endtest %}
