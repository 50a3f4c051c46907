{#-
    The marts' ratio columns, computed from the row's own sums (never averaged), rounded to 6
    decimals, null when the denominator is 0 or null (DECISIONLOG.md "Account level"):
        ctr = 100 * clicks / impressions, cpc = spend / clicks, cpm = 1000 * spend / impressions,
        frequency = impressions / reach.
    `ratios`: which columns, in that order, as a select list (the measures read as columns
    impressions, clicks, spend and reach of the row).
-#}
{% macro meta_ads_ratio_columns(ratios=['ctr', 'cpc', 'cpm']) -%}
    {%- set definitions = {
        'ctr': ['100.0 * clicks', 'impressions'],
        'cpc': ['spend', 'clicks'],
        'cpm': ['1000.0 * spend', 'impressions'],
        'frequency': ['1.0 * impressions', 'reach'],
    } -%}
    {%- set selected = [] -%}
    {%- for ratio in ratios -%}
        {%- if ratio not in definitions -%}
            {{ exceptions.raise_compiler_error(
                'meta_ads_ratio_columns: unknown ratio ' ~ ratio ~ ', expected one of '
                ~ (definitions.keys() | list | join(', '))
            ) }}
        {%- endif -%}
        {%- set numerator, denominator = definitions[ratio] -%}
        {%- do selected.append(
            'cast(\n    case\n        when ' ~ denominator ~ ' > 0 then round('
            ~ numerator ~ ' / ' ~ denominator ~ ', 6)\n    end as numeric\n) as ' ~ ratio
        ) -%}
    {%- endfor -%}
    {{ return(selected | join(',\n')) }}
{%- endmacro %}
