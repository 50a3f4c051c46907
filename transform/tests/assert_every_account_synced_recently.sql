{#-
    Freshness per tenant and ad account (dbt's source freshness is per table: one stalled
    account among many live ones would never show). Every account the pipeline has synced must
    have a window loaded within var meta_account_stale_after_hours (default 36: the daily job plus
    slack). Returns each stale account with its last load; an account taken out of the sync on
    purpose goes in var meta_retired_accounts ('act_123', or '<tenant_id>/act_123' for one tenant).
    Runs in the scheduled build (it tests stg_meta_ads__insights_windows, which the job selects).
-#}
{{ config(tags=['freshness']) }}

{%- set retired = meta_ads_text_array(var('meta_retired_accounts')) %}

with

last_loads as (
    select
        tenant_id,
        ad_account_id,
        max(_loaded_at) as last_loaded_at
    from {{ ref('stg_meta_ads__insights_windows') }}
    group by tenant_id, ad_account_id
)

select
    tenant_id,
    ad_account_id,
    last_loaded_at
from last_loads
where
    last_loaded_at
    < now() - interval '{{ var("meta_account_stale_after_hours") | int }} hours'
    and ad_account_id != all({{ retired }})
    and tenant_id || '/' || ad_account_id != all({{ retired }})
