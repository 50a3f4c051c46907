{#-
    Union of the insights report tables (var meta_insights_reports -> raw `insights_<name>`);
    a report whose raw table is missing fails the run (macros/meta_ads_raw.sql). The source() calls below only record
    lineage for the default reports. Every key's latest load, including rows that a later sync
    of their window no longer returned: stg_meta_ads__insights drops those.
-#}
-- depends_on: {{ source('meta_ads', 'insights_ad') }}
-- depends_on: {{ source('meta_ads', 'insights_adset') }}
-- depends_on: {{ source('meta_ads', 'insights_campaign') }}
{#- With no report table yet, one empty, typed branch keeps the view valid. -#}
{%- set reports = meta_ads_insights_reports() or [{'name': 'none', 'relation': none}] -%}
{%- set columns = [
    ['tenant_id', 'text'],
    ['account_id', 'text'],
    ['date', 'date'],
    ['level', 'text'],
    ['action_report_time', 'text'],
    ['attribution_windows', 'jsonb'],
    ['breakdowns', 'jsonb'],
    ['account_name', 'text'],
    ['account_currency', 'text'],
    ['campaign_id', 'text'],
    ['campaign_name', 'text'],
    ['adset_id', 'text'],
    ['adset_name', 'text'],
    ['ad_id', 'text'],
    ['ad_name', 'text'],
    ['impressions', 'bigint'],
    ['reach', 'bigint'],
    ['clicks', 'bigint'],
    ['inline_link_clicks', 'bigint'],
    ['spend', 'numeric'],
    ['frequency', 'numeric'],
    ['actions', 'jsonb'],
    ['action_values', 'jsonb'],
] + meta_ads_sdc_columns() | rejectattr(0, 'equalto', '_sdc_deleted_at') | list + [
    ['_sdc_deleted_at', 'timestamp'],
] %}
{#- _sdc_deleted_at as stored (naive), not shifted to UTC: only tested for null, and the planner
    then knows from the column's statistics that it is (nearly) always null, where it estimates
    `<expression> is null` at 0.5 % and expected a handful of rows (and nested its joins). #}

with

{% for report in reports %}
    {%- set i = loop.index %}
    report_{{ i }} as not materialized (
        {{ meta_ads_select_raw(report.relation, columns) | indent(4) }}
    ),

    renamed_{{ i }} as not materialized (
        select
            {{ meta_ads_tenant_id('tenant_id') }} as tenant_id,
            {{ meta_ads_normalise_account_id('account_id') }} as ad_account_id,
            '{{ report.name }}' as report_name,
            lower(level) as level,
            case lower(level)
                when 'ad' then ad_id
                when 'adset' then adset_id
                when 'campaign' then campaign_id
                when 'account' then {{ meta_ads_normalise_account_id('account_id') }}
            end as object_id,
            date,
            lower(action_report_time) as action_report_time,
            coalesce(attribution_windows, '[]'::jsonb) as attribution_windows,
            coalesce(breakdowns, '{}'::jsonb) as breakdowns,
            account_name,
            upper(account_currency) as currency,
            campaign_id,
            campaign_name,
            adset_id,
            adset_name,
            ad_id,
            ad_name,
            impressions,
            reach,
            clicks,
            inline_link_clicks as link_clicks,
            spend,
            frequency,
            coalesce(actions, '[]'::jsonb) as actions,
            coalesce(action_values, '[]'::jsonb) as action_values,
            _sdc_extracted_at as extracted_at,
            _sdc_batched_at as _loaded_at,
            coalesce(_sdc_sequence, 0) as _load_sequence,
            _sdc_deleted_at
        from report_{{ i }}
    ),

    deduplicated_{{ i }} as not materialized (
        {{ meta_ads_latest_per_key(
            'renamed_' ~ i,
            ['tenant_id', 'ad_account_id', 'date', 'level', 'object_id', 'breakdowns'],
            report.relation,
        ) | indent(8) }}
    ),

{% endfor %}
unioned as (
    {%- for report in reports %}
        select * from deduplicated_{{ loop.index }}
        {{- "\n    union all" if not loop.last }}
    {%- endfor %}
),

final as (
    select
        tenant_id,
        ad_account_id,
        report_name,
        level,
        object_id,
        date,
        action_report_time,
        attribution_windows,
        breakdowns,
        account_name,
        currency,
        campaign_id,
        campaign_name,
        adset_id,
        adset_name,
        ad_id,
        ad_name,
        impressions,
        reach,
        clicks,
        link_clicks,
        spend,
        frequency,
        actions,
        action_values,
        extracted_at,
        _loaded_at,
        _load_sequence
    from unioned
)

select * from final
