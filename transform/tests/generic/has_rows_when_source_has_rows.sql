{#-
    The model is not empty when `source_model` (e.g. the staged insights) has rows: an empty mart
    passes every row-level test, so this catches a build that produced nothing from loaded data.
    Returns one row when it fails. Declare it with `where: "true"` so the whole model is read
    whatever var meta_test_scope says (a day without loads must not look like an empty mart).
-#}
{% test has_rows_when_source_has_rows(model, source_model) %}

select
    'the model has no rows while its source has some' as failure
where
    exists (select 1 from {{ source_model }})
    and not exists (select 1 from {{ model }})

{% endtest %}
