select 1 as x
{% for m in metrics %}, {{ m }}{% endfor %}
