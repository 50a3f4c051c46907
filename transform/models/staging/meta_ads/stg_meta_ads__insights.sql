{#-
    The current insights rows: every key's latest load (stg_meta_ads__insights_loaded) except the
    rows a later sync of their window no longer returned (Fivetran's rollback-sync semantics).

    A window record (stg_meta_ads__insights_windows) says when the tap started extracting it
    (`started_at`, taken before the window's first row was written); every row written for that
    window is extracted at or after it. So a row of a report and day is superseded when a window
    of the same tenant, account and report that covers the day started after the row was
    extracted: that window re-read the day and did not return the row (Meta restated the day,
    or the object was deleted). Windows loaded before `started_at` existed (null) supersede
    nothing, nor is a row without an extraction time ever superseded.

    One anti-join against the latest start per report-day, so a mart's `_loaded_at` filter still
    reaches the raw scan.
-#}

with

loaded as not materialized (
    select * from {{ ref('stg_meta_ads__insights_loaded') }}
),

window_starts as (
    select * from {{ ref('stg_meta_ads__insights_windows') }}
    where started_at is not null
),

-- the latest start of a window covering each tenant, account, report and day
latest_window_starts as (
    select
        window_starts.tenant_id,
        window_starts.ad_account_id,
        window_starts.report_name,
        cast(covered.day as date) as date,
        max(window_starts.started_at) as started_at
    from window_starts
    cross join
        lateral generate_series(
            window_starts.date_start, window_starts.date_stop, interval '1 day'
        ) as covered (day)
    group by 1, 2, 3, 4
),

final as (
    select loaded.*
    from loaded
    where not exists (
        select 1
        from latest_window_starts
        where
            latest_window_starts.tenant_id = loaded.tenant_id
            and latest_window_starts.ad_account_id = loaded.ad_account_id
            and latest_window_starts.report_name = loaded.report_name
            and latest_window_starts.date = loaded.date
            and latest_window_starts.started_at > loaded.extracted_at
    )
)

select * from final
