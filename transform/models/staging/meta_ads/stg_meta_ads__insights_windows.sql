{%- set raw_relation = meta_ads_raw_relation(source('meta_ads', 'insights_windows').identifier) %}
{%- set columns = [
    ['tenant_id', 'text'],
    ['account_id', 'text'],
    ['report_name', 'text'],
    ['level', 'text'],
    ['date_start', 'date'],
    ['date_stop', 'date'],
    ['rows', 'bigint'],
    ['started_at', 'timestamptz'],
    ['completed_at', 'timestamptz'],
] + meta_ads_sdc_columns() | rejectattr(0, 'equalto', '_sdc_deleted_at') | list + [
    ['_sdc_deleted_at', 'timestamp'],
] %}
{#- _sdc_deleted_at as stored (naive), not shifted to UTC: only tested for null, and the planner
    then knows from the column's statistics that it is (nearly) always null, where it estimates
    `<expression> is null` at 0.5 % and expected a handful of rows (and nested its joins). #}

with

source as not materialized (
    {{ meta_ads_select_raw(raw_relation, columns) | indent(4) }}
),

renamed as not materialized (
    select
        {{ meta_ads_tenant_id('tenant_id') }} as tenant_id,
        {{ meta_ads_normalise_account_id('account_id') }} as ad_account_id,
        report_name,
        lower(level) as level,
        date_start,
        date_stop,
        rows as row_count,
        started_at,
        completed_at,
        _sdc_batched_at as _loaded_at,
        coalesce(_sdc_sequence, 0) as _load_sequence,
        _sdc_deleted_at
    from source
),

deduplicated as (
    {{ meta_ads_latest_per_key(
        'renamed',
        ['tenant_id', 'ad_account_id', 'report_name', 'date_start', 'date_stop'],
        raw_relation,
    ) | indent(4) }}
),

final as (
    select
        tenant_id,
        ad_account_id,
        report_name,
        level,
        date_start,
        date_stop,
        (date_stop - date_start) + 1 as day_count,
        row_count,
        started_at,
        completed_at,
        _loaded_at,
        _load_sequence
    from deduplicated
)

select * from final
