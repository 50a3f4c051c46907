{#-
    Every non-null value of the column has a parent row in `to` (column `field`) of the same
    tenant: dbt's built-in `relationships`, joined on tenant_id as well. An ad account (and its
    campaigns, ad sets and ads) listed under two tenants exists once per tenant, so a parent of
    another tenant does not count.
-#}
{% test relationships_within_tenant(model, column_name, to, field, tenant_column='tenant_id') %}

with

children as (

    select
        {{ tenant_column }} as tenant_id,
        {{ column_name }} as child_value
    from {{ model }}
    where {{ column_name }} is not null

),

parents as (

    select
        {{ tenant_column }} as tenant_id,
        {{ field }} as parent_value
    from {{ to }}

)

select
    children.tenant_id,
    children.child_value
from children
left join parents
    on
        children.tenant_id = parents.tenant_id
        and children.child_value = parents.parent_value
where parents.parent_value is null

{% endtest %}
