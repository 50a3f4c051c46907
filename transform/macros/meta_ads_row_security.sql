{#-
    Tenant isolation for readers, with PostgreSQL row level security (transform/README.md,
    "Readers and row level security"; DECISIONLOG.md).

    - Every mart carries the post-hook meta_ads_row_security() (dbt_project.yml): row level
      security enabled (not FORCE: the owner role that loads and builds bypasses it, so the
      incremental delete+insert and the coverage table keep reading and writing every tenant),
      one policy `meta_tenant_isolation` FOR SELECT TO PUBLIC USING (tenant_id = the reader's
      tenant), and SELECT granted to each role of var('meta_reader_roles'), as their only
      privilege on the table (what default privileges gave them beyond it is revoked). No policy
      allows INSERT/UPDATE/DELETE either: readers cannot write.
    - on-run-start, meta_ads_ensure_reader_roles(): the reader roles exist.
    - on-run-end, meta_ads_secure_raw_and_grant_schemas(): the same policy on every raw table
      with a tenant_id column (target-postgres creates them, not dbt), USAGE on the marts'
      schemas for the readers; nothing is granted on raw or staging. Staging views run with
      their owner's rights and would bypass row level security: readers must never get them.

    The reader's tenant is var('meta_tenant_setting'), a SQL expression giving it as text
    (default: the session setting app.tenant_id). No tenant set, or an empty one: no rows.

    Idempotent and cheap when nothing changed: the policy carries a comment with the expression
    it was created with; when the table already has row level security and that comment, the
    DDL is skipped (ALTER TABLE / CREATE POLICY take an ACCESS EXCLUSIVE lock, which would make
    every incremental build wait for the dashboards' running queries, and queue the next ones).
    Otherwise the policy is dropped and created again, in the same transaction as the model (a
    full refresh builds a new table, which gets it anew).
-#}

{% macro meta_ads_tenant_policy_name() %}
    {{ return('meta_tenant_isolation') }}
{% endmacro %}


{#- The policy's USING expression; column_sql is the tenant id as text. -#}
{% macro meta_ads_tenant_policy_using(column_sql='tenant_id') %}
    {{ return(
        column_sql ~ " = nullif(cast((" ~ var('meta_tenant_setting') ~ ") as text), '')"
    ) }}
{% endmacro %}


{#- The comment the policy carries: what it was created from, to tell if it is current. -#}
{% macro meta_ads_tenant_policy_comment(using_sql) %}
    {{ return('meta_ads (dbt, transform/macros/meta_ads_row_security.sql): ' ~ using_sql) }}
{% endmacro %}


{#- var('meta_reader_roles') as a list (a single name is accepted too). -#}
{% macro meta_ads_reader_roles() %}
    {%- set roles = var('meta_reader_roles', []) or [] -%}
    {%- if roles is string -%}
        {%- set roles = [roles] -%}
    {%- endif -%}
    {{ return(roles | list) }}
{% endmacro %}


{% macro meta_ads_quote_ident(name) %}
    {{ return('"' ~ (name | replace('"', '""')) ~ '"') }}
{% endmacro %}


{% macro meta_ads_quote_literal(text) %}
    {{ return("'" ~ (text | replace("'", "''")) ~ "'") }}
{% endmacro %}


{% macro meta_ads_literal_array(values) %}
    {%- set items = [] -%}
    {%- for value in values -%}
        {%- do items.append(meta_ads_quote_literal(value)) -%}
    {%- endfor -%}
    {{ return('array[' ~ (items | join(', ')) ~ ']::text[]') }}
{% endmacro %}


{#-
    Row level security state of the tables with a tenant_id column matching `table_filter` (SQL
    on pg_class `tbl` / pg_namespace `nsp`): whether it is enabled, the policy's comment, whether
    the current user may alter the table, and which reader roles lack exactly SELECT on it.
-#}
{% macro meta_ads_row_security_state(table_filter) %}
    {%- set query -%}
        select
            nsp.nspname as table_schema,
            tbl.relname as table_name,
            pg_catalog.format_type(col.atttypid, col.atttypmod) as tenant_type,
            tbl.relrowsecurity as rls_enabled,
            pg_catalog.pg_has_role(current_user, tbl.relowner, 'USAGE') as can_alter,
            pg_catalog.pg_get_userbyid(tbl.relowner) as table_owner,
            (
                select pg_catalog.obj_description(pol.oid, 'pg_policy')
                from pg_catalog.pg_policy as pol
                where
                    pol.polrelid = tbl.oid
                    and pol.polname = {{ meta_ads_quote_literal(meta_ads_tenant_policy_name()) }}
            ) as policy_comment,
            cast(to_json(array(
                select wanted.rolname
                from unnest({{ meta_ads_literal_array(meta_ads_reader_roles()) }})
                    as wanted (rolname)
                where
                    coalesce(array(
                        select acl.privilege_type::text
                        from aclexplode(tbl.relacl) as acl
                        where acl.grantee = (
                            select rol.oid from pg_catalog.pg_roles as rol
                            where rol.rolname = wanted.rolname
                        )
                        order by 1
                    ), '{}') is distinct from array['SELECT']
            )) as text) as roles_to_grant
        from pg_catalog.pg_class as tbl
        inner join pg_catalog.pg_namespace as nsp on tbl.relnamespace = nsp.oid
        inner join pg_catalog.pg_attribute as col
            on
                tbl.oid = col.attrelid
                and col.attname = 'tenant_id'
                and not col.attisdropped
        where
            tbl.relkind in ('r', 'p')
            and ({{ table_filter }})
        order by 1, 2
    {%- endset -%}
    {{ return(run_query(query)) }}
{% endmacro %}


{#-
    SQL that puts the tenant policy on one table (a row of meta_ads_row_security_state), or ''
    when it already has it; with grant, also SELECT (and nothing else) for the reader roles.
-#}
{% macro meta_ads_secure_table_sql(row, grant) %}
    {%- set relation = api.Relation.create(
        database=target.database, schema=row['table_schema'], identifier=row['table_name'],
    ) -%}
    {%- set policy = meta_ads_tenant_policy_name() -%}
    {#- compare as text; a text column stays bare so its index can serve the policy -#}
    {%- if row['tenant_type'] == 'text' or row['tenant_type'].startswith('character varying') -%}
        {%- set using_sql = meta_ads_tenant_policy_using('tenant_id') -%}
    {%- else -%}
        {%- set using_sql = meta_ads_tenant_policy_using('cast(tenant_id as text)') -%}
    {%- endif -%}
    {%- set comment = meta_ads_tenant_policy_comment(using_sql) -%}
    {%- set statements = [] -%}
    {%- if not row['rls_enabled'] -%}
        {%- do statements.append('alter table ' ~ relation ~ ' enable row level security') -%}
    {%- endif -%}
    {%- if not row['rls_enabled'] or row['policy_comment'] != comment -%}
        {%- do statements.append('drop policy if exists ' ~ policy ~ ' on ' ~ relation) -%}
        {%- do statements.append(
            'create policy ' ~ policy ~ ' on ' ~ relation
            ~ ' as permissive for select to public using (' ~ using_sql ~ ')'
        ) -%}
        {%- do statements.append(
            'comment on policy ' ~ policy ~ ' on ' ~ relation ~ ' is '
            ~ meta_ads_quote_literal(comment)
        ) -%}
    {%- endif -%}
    {%- if grant -%}
        {%- for role in fromjson(row['roles_to_grant']) -%}
            {%- set grantee = meta_ads_quote_ident(role) -%}
            {%- do statements.append('revoke all on ' ~ relation ~ ' from ' ~ grantee) -%}
            {%- do statements.append('grant select on ' ~ relation ~ ' to ' ~ grantee) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if statements | length > 0 -%}
        {{ log('meta_ads: row level security of ' ~ relation ~ ': ' ~ statements | join('; ')) }}
        {{ return(statements | join(';\n') ~ ';') }}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}


{#- post-hook of every mart: row level security, the tenant policy and the readers' SELECT. -#}
{% macro meta_ads_row_security(relation=none) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set relation = relation or this -%}
    {%- set state = meta_ads_row_security_state(
        'nsp.nspname = ' ~ meta_ads_quote_literal(relation.schema)
        ~ ' and tbl.relname = ' ~ meta_ads_quote_literal(relation.identifier)
    ) -%}
    {%- if state.rows | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            'meta_ads_row_security: ' ~ relation ~ ' is not a table with a tenant_id column'
        ) }}
    {%- endif -%}
    {{ return(meta_ads_secure_table_sql(state.rows[0], grant=true)) }}
{% endmacro %}


{#-
    on-run-start: each reader role exists (created NOLOGIN when missing). When one is missing and
    the current user may not create roles, stop with one line that names the role and the fix.
-#}
{% macro meta_ads_ensure_reader_roles() %}
    {%- set roles = meta_ads_reader_roles() -%}
    {%- if not execute or roles | length == 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set query -%}
        select
            wanted.rolname,
            (
                select me.rolsuper or me.rolcreaterole
                from pg_catalog.pg_roles as me
                where me.rolname = current_user
            ) as can_create
        from unnest({{ meta_ads_literal_array(roles) }}) as wanted (rolname)
        where not exists (
            select 1 from pg_catalog.pg_roles as rol
            where rol.rolname = wanted.rolname
        )
    {%- endset -%}
    {%- set statements = [] -%}
    {%- for row in run_query(query).rows -%}
        {%- if not row['can_create'] -%}
            {{ exceptions.raise_compiler_error(
                'meta_ads: reader role "' ~ row['rolname'] ~ '" does not exist and user "'
                ~ target.user ~ '" cannot create roles: create it (create role '
                ~ meta_ads_quote_ident(row['rolname'])
                ~ ' nologin;) or set var meta_reader_roles: [] (no readers)'
            ) }}
        {%- endif -%}
        {#- a concurrent run may have created it meanwhile -#}
        {%- do statements.append(
            'do $meta_ads$ begin create role ' ~ meta_ads_quote_ident(row['rolname'])
            ~ ' nologin; exception when duplicate_object or unique_violation then null; '
            ~ 'end $meta_ads$'
        ) -%}
        {{ log('meta_ads: creating reader role ' ~ row['rolname'] ~ ' (nologin)', info=true) }}
    {%- endfor -%}
    {{ return(statements | join(';\n')) }}
{% endmacro %}


{#- The schemas of the models that carry the row level security post-hook (the marts). -#}
{% macro meta_ads_secured_schemas() %}
    {%- set secured = [] -%}
    {%- set others = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- set hooks = node.config.get('post-hook') or [] -%}
        {%- set hook_sql = hooks | map(attribute='sql') | join(' ') -%}
        {%- if 'meta_ads_row_security' in hook_sql -%}
            {%- do secured.append(node.schema) -%}
        {%- else -%}
            {%- do others.append(node.schema) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set secured = secured | unique | list -%}
    {{ return({
        'secured': secured,
        'unsecured': others | unique | reject('in', secured) | list,
    }) }}
{% endmacro %}


{#-
    on-run-end: the tenant policy on every raw table with a tenant_id column (skipped, with a
    warning, when the current user does not own it), USAGE on the marts' schemas for the reader
    roles, and a warning if a reader can reach the staging schema.
-#}
{% macro meta_ads_secure_raw_and_grant_schemas() %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set statements = [] -%}
    {%- set raw_state = meta_ads_row_security_state(
        'nsp.nspname = ' ~ meta_ads_quote_literal(meta_ads_raw_schema())
    ) -%}
    {%- for row in raw_state.rows -%}
        {%- set sql = meta_ads_secure_table_sql(row, grant=false) -%}
        {%- if sql and row['can_alter'] -%}
            {%- do statements.append(sql) -%}
        {%- elif sql -%}
            {%- do exceptions.warn(
                'meta_ads: cannot put row level security on raw table '
                ~ row['table_schema'] ~ '.' ~ row['table_name'] ~ ': it is owned by '
                ~ row['table_owner'] ~ ', not ' ~ target.user
                ~ ' (load and build with the same owner role)'
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set roles = meta_ads_reader_roles() -%}
    {%- set schemas = meta_ads_secured_schemas() -%}
    {%- if roles | length > 0 -%}
        {%- set query -%}
            select
                nsp.nspname as schema_name,
                wanted.rolname,
                nsp.nspname = any({{ meta_ads_literal_array(schemas['secured']) }}) as secured,
                exists (
                    select 1
                    from aclexplode(nsp.nspacl) as acl
                    where
                        acl.privilege_type = 'USAGE'
                        and acl.grantee = (
                            select rol.oid from pg_catalog.pg_roles as rol
                            where rol.rolname = wanted.rolname
                        )
                ) as has_usage
            from pg_catalog.pg_namespace as nsp
            cross join unnest({{ meta_ads_literal_array(roles) }}) as wanted (rolname)
            where nsp.nspname = any(
                {{ meta_ads_literal_array(schemas['secured'] + schemas['unsecured']) }}
            )
            order by 1, 2
        {%- endset -%}
        {%- for row in run_query(query).rows -%}
            {%- if row['secured'] and not row['has_usage'] -%}
                {%- do statements.append(
                    'grant usage on schema ' ~ meta_ads_quote_ident(row['schema_name'])
                    ~ ' to ' ~ meta_ads_quote_ident(row['rolname']) ~ ';'
                ) -%}
            {%- elif not row['secured'] and row['has_usage'] -%}
                {%- do exceptions.warn(
                    'meta_ads: reader role ' ~ row['rolname'] ~ ' has USAGE on schema '
                    ~ row['schema_name'] ~ ', whose views run as their owner and bypass row level'
                    ~ ' security: revoke usage on schema ' ~ row['schema_name'] ~ ' from '
                    ~ row['rolname']
                ) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(statements | join('\n')) }}
{% endmacro %}
