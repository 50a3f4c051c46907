{%- set raw_relation = meta_ads_raw_relation(source('meta_ads', 'ads').identifier) %}
{%- set columns = [
    ['tenant_id', 'text'],
    ['account_id', 'text'],
    ['id', 'text'],
    ['name', 'text'],
    ['campaign_id', 'text'],
    ['adset_id', 'text'],
    ['status', 'text'],
    ['effective_status', 'text'],
    ['created_time', 'timestamptz'],
    ['updated_time', 'timestamptz'],
] + meta_ads_sdc_columns() %}

with

source as not materialized (
    {{ meta_ads_select_raw(raw_relation, columns) | indent(4) }}
),

renamed as not materialized (
    select
        {{ meta_ads_tenant_id('tenant_id') }} as tenant_id,
        {{ meta_ads_normalise_account_id('account_id') }} as ad_account_id,
        campaign_id,
        adset_id,
        id as ad_id,
        name as ad_name,
        status as ad_status,
        effective_status,
        created_time as created_at,
        updated_time as updated_at,
        _sdc_batched_at as _loaded_at,
        coalesce(_sdc_sequence, 0) as _load_sequence,
        _sdc_deleted_at
    from source
),

deduplicated as (
    {{ meta_ads_latest_per_key(
        'renamed', ['tenant_id', 'ad_id'], raw_relation,
    ) | indent(4) }}
),

final as (
    select
        tenant_id,
        ad_account_id,
        campaign_id,
        adset_id,
        ad_id,
        ad_name,
        ad_status,
        effective_status,
        created_at,
        updated_at,
        _loaded_at
    from deduplicated
)

select * from final
