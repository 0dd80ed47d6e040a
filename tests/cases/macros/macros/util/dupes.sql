{% macro cents_to_dollars(column) %}{{ column }} / 100{% endmacro %}
{% macro ref(name) %}{{ name }}{% endmacro %}
{% macro broken(x) %}{{ x.nope.deeper }}{% endmacro %}
