{#-
    Grain: one row per insights_windows record of the reports in var('meta_insights_reports') and
    day it covers (tenant_id, ad_account_id, report_name, date_start, date_stop, date). A day
    re-read by several windows appears once per window: consumers aggregate (e.g. the latest
    window load per account-day is max(_loaded_at)).

    The one home of "the days the tap synced", read by both marts, meta_insights_coverage, the
    incremental strategy (meta_ads_account_days_to_rebuild) and the covers_synced_days test.
    Deliberately not aggregated: a view without GROUP BY lets a consumer's filter on the window
    (`_loaded_at > <high-water mark>`, `date_stop >= <day>`) reach the windows table before the
    windows are expanded into days.
-#}
{%- set reports = meta_ads_text_array(var('meta_insights_reports')) %}

with

insights_windows as (
    select * from {{ ref('stg_meta_ads__insights_windows') }}
    where report_name = any({{ reports }})
),

final as (
    select
        insights_windows.tenant_id,
        insights_windows.ad_account_id,
        insights_windows.report_name,
        insights_windows.level,
        insights_windows.date_start,
        insights_windows.date_stop,
        cast(synced.day as date) as date,
        insights_windows._loaded_at
    from insights_windows
    cross join
        lateral generate_series(
            insights_windows.date_start, insights_windows.date_stop, interval '1 day'
        ) as synced (day)
)

select * from final
