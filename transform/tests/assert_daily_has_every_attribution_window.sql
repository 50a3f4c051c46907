{#-
    Window completeness of meta_insights_daily, per row: every staged insights row (reports of
    var('meta_insights_reports')) has a row in the mart for the `default` window and for each
    window its report requested (the row's attribution_windows). Derived from staging, not from
    int_meta_ads__insights_by_window, so a window lost on the way is caught wherever it was lost.
    Matched on the mart's grain (report_name is not part of it: two reports may share a grain).
    Returns the missing (row, window) pairs. With var meta_test_scope = recent, only rows loaded
    in the last var('meta_test_recent_hours') hours are checked, against the mart's rows of as
    recent a load.
-#}

with

staged as (
    select * from {{ ref('stg_meta_ads__insights') }}
    {%- if var('meta_test_scope', 'all') == 'recent' %}
        where
            _loaded_at
            >= now() - interval '{{ var("meta_test_recent_hours", 24) | int }} hours'
    {%- endif %}
),

-- A mart row's _loaded_at is at least the load of every staged row of its grain, so the rows of
-- recent loads are among the mart's recent rows (and one whose row kept an older load is missing)
daily as (
    select * from {{ ref('meta_insights_daily') }}
    {%- if var('meta_test_scope', 'all') == 'recent' %}
        where
            _loaded_at
            >= now() - interval '{{ var("meta_test_recent_hours", 24) | int }} hours'
    {%- endif %}
),

expected as (
    select
        staged.tenant_id,
        staged.ad_account_id,
        staged.date,
        staged.level,
        staged.object_id,
        staged.action_report_time,
        staged.breakdowns,
        staged.report_name,
        windows.attribution_window
    from staged
    cross join lateral (
        select 'default' as attribution_window
        union
        select requested.value as attribution_window
        from jsonb_array_elements_text(
            case
                when jsonb_typeof(staged.attribution_windows) = 'array'
                    then staged.attribution_windows
                else '[]'::jsonb
            end
        ) as requested
    ) as windows
),

missing as (
    select expected.*
    from expected
    where not exists (
        select 1
        from daily
        where
            daily.tenant_id = expected.tenant_id
            and daily.ad_account_id = expected.ad_account_id
            and daily.date = expected.date
            and daily.level = expected.level
            and daily.object_id = expected.object_id
            and daily.action_report_time = expected.action_report_time
            and daily.attribution_window = expected.attribution_window
            and daily.breakdowns = expected.breakdowns
    )
)

select * from missing
