"""Operations: what deploy/ ships, generated from the product's own definitions.

``grafana`` writes the dashboards of deploy/grafana/dashboards from the KPI registry and the
product's queries; ``macros`` expands a panel's SQL as Grafana and its ClickHouse plugin do;
``cluster`` rewrites the migrations of sql/ for a replicated, sharded ClickHouse cluster.
"""
