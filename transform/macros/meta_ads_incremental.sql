{#-
    Incremental strategy `key_range_delete_insert`: dbt's delete+insert, plus a redundant
    predicate that lets Postgres find the rows to replace through the primary-key index instead
    of scanning the whole mart:

        delete from <mart> where key in (select key from <new rows>) and key >= '<min new key>'

    The marts' keys start with the date (yyyymmdd-md5), so '<min new key>' cuts the delete down to
    the dates being replaced (the last 29 days on a daily sync) and inserts land at the "recent"
    end of the index. The minimum is read from the new rows and inlined as a literal, so the
    planner can estimate the range (a parameter would be estimated at a third of the table).

    With config `meta_replace_account_days: true` (both marts) the new rows replace whole
    account-days instead of matching keys: every row of the mart on a (tenant_id, ad_account_id,
    date) that is rebuilt goes, so a row the source no longer returns (a restated day, a deleted
    ad) leaves the mart too. The rebuilt account-days are those of the new rows plus the days of
    windows loaded since the high-water mark (a re-synced day may have no rows left at all); the
    model must rebuild exactly these (meta_ads_account_days_to_rebuild). The key range is then
    `key >= '<yyyymmdd of the earliest rebuilt day>'`. The model runs in one REPEATABLE READ
    transaction (meta_ads_mart_transaction), so the model and this delete see the same windows.
-#}
{% macro get_incremental_key_range_delete_insert_sql(arg_dict) %}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- if unique_key is not string -%}
        {{ exceptions.raise_compiler_error(
            'key_range_delete_insert needs a single unique_key column, got ' ~ unique_key
        ) }}
    {%- endif -%}
    {%- set predicates = (arg_dict['incremental_predicates'] or []) | list -%}
    {%- if not config.get('meta_replace_account_days', false) -%}
        {%- set lowest_query -%}
            select min({{ adapter.quote(unique_key) }}) from {{ source }}
        {%- endset -%}
        {%- set lowest = run_query(lowest_query).columns[0].values()[0] -%}
        {%- if lowest is not none -%}
            {%- do predicates.append(
                'DBT_INTERNAL_DEST.' ~ adapter.quote(unique_key) ~ " >= '"
                ~ (lowest | replace("'", "''")) ~ "'"
            ) -%}
        {%- endif -%}
        {{ return(get_delete_insert_merge_sql(
            target, source, unique_key, arg_dict['dest_columns'], predicates
        )) }}
    {%- endif -%}

    {%- set rebuilt_days -%}
        select tenant_id, ad_account_id, date from {{ source }}
        union
        {{ meta_ads_account_days_to_rebuild(with_rows=false) }}
    {%- endset -%}
    {%- set lowest_query -%}
        select to_char(min(rebuilt.date), 'YYYYMMDD') from ({{ rebuilt_days }}) as rebuilt
    {%- endset -%}
    {%- set lowest = run_query(lowest_query).columns[0].values()[0] -%}
    {%- if lowest is not none -%}
        {%- do predicates.append(
            'DBT_INTERNAL_DEST.' ~ adapter.quote(unique_key) ~ " >= '" ~ lowest ~ "'"
        ) -%}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set sql -%}
    delete from {{ target }} as DBT_INTERNAL_DEST
    where
        (
            DBT_INTERNAL_DEST.tenant_id,
            DBT_INTERNAL_DEST.ad_account_id,
            DBT_INTERNAL_DEST.date
        ) in ({{ rebuilt_days }})
        {%- for predicate in predicates %}
        and {{ predicate }}
        {%- endfor %};

    insert into {{ target }} ({{ columns }})
    (
        select {{ columns }}
        from {{ source }}
    )
    {%- endset -%}
    {{ return(sql) }}
{% endmacro %}


{#-
    (tenant_id, ad_account_id, date) of the account-days an incremental run rebuilds: those with
    staged insights rows loaded after the high-water mark (`with_rows`, those matching
    `rows_where`; the staged rows, not their windows: the same account-days and loads, without
    expanding and summing each row's actions per window) or with `insights_windows` of the
    reports in var('meta_insights_reports') loaded after it (days a sync re-read, which are
    rebuilt whether or not any row is left on them), less the account-days the mart already
    holds as of their latest load. The models call it with their rows; the incremental strategy
    without (it adds the account-days of the model's new rows).

    That last condition is what makes var('meta_load_lookback_minutes') cheap: the margin re-reads
    loads up to that long before the high-water mark, but an account-day is rebuilt again only if
    one of them is newer than its rows in the mart (a batch committed late, after the build that
    set the mark). Without it the margin rebuilt everything loaded in the margin every run: the
    previous sync's days, and after a backfill loaded within the margin, the whole history (the
    daily incremental build took 124 % of a full build, bench/README.md). A mart row's
    `_loaded_at` is the latest load of its day's row and windows, and one account's loads are
    committed in load order (one loader per account at a time), so "the mart holds a load at
    least as new" means "this load was built". (A window whose days have no rows leaves nothing
    in the daily mart, so its days are re-read while it is in the margin: a few empty days.)
-#}
{% macro meta_ads_account_days_to_rebuild(with_rows=true, rows_where='true') %}
    select
        loaded.tenant_id,
        loaded.ad_account_id,
        loaded.date
    from (
        select
            recent.tenant_id,
            recent.ad_account_id,
            recent.date,
            max(recent._loaded_at) as _loaded_at
        from (
            {%- if with_rows %}
            select
                staged.tenant_id,
                staged.ad_account_id,
                staged.date,
                staged._loaded_at
            from {{ ref('stg_meta_ads__insights') }} as staged
            where
                ({{ rows_where }})
                and staged._loaded_at > {{ meta_ads_loaded_after() }}
            union all
            {%- endif %}
            select
                loaded_windows.tenant_id,
                loaded_windows.ad_account_id,
                loaded_windows.date,
                loaded_windows._loaded_at
            from {{ ref('int_meta_ads__synced_days') }} as loaded_windows
            where loaded_windows._loaded_at > {{ meta_ads_loaded_after() }}
        ) as recent
        group by 1, 2, 3
    ) as loaded
    -- a scalar subquery, probed per account-day through the mart's (tenant, account, date)
    -- index: as NOT EXISTS the planner, guessing a third of the raw rows as loaded, hashed the
    -- whole mart for a few hundred account-days (5 s of a 8 s daily model, bench/README.md)
    where
        coalesce((
            select max(built._loaded_at)
            from {{ this }} as built
            where
                built.tenant_id = loaded.tenant_id
                and built.ad_account_id = loaded.ad_account_id
                and built.date = loaded.date
        ), '-infinity'::timestamptz) < loaded._loaded_at
{% endmacro %}


{#-
    Pre-hook of the marts: one snapshot for the whole build of the mart (the model's query, the
    delete's rebuilt account-days and the insert), so windows another run loads meanwhile are
    either rebuilt and deleted, or neither. Only one build of the marts runs at a time, so no
    serialization failure can arise. JIT off: the raw scans look expensive to the planner, and
    compiling cost more than it saved (DECISIONLOG.md). work_mem 64 MB: the daily model's sort of
    a day's changed rows (36 MB for 7 accounts) spilled to disk at the default 4 MB.
-#}
{% macro meta_ads_mart_transaction() %}
    set transaction isolation level repeatable read;
    set local jit = off;
    set local work_mem = '64MB'
{% endmacro %}
