"""Render docs/metrics.md from the metric table, so the reference cannot drift from the code.

`python -m gpucost.metrics.docs > docs/metrics.md`; a test fails when the
committed page differs from this output.
"""

from __future__ import annotations

from gpucost.metrics.names import DEFAULT_WORKLOAD_LABELS, EXPORTER_METRICS

__all__ = ["render_metrics_doc"]

_INTRO = """# Metrics reference

Every metric the `gpucost-exporter` publishes.  Generated from
`exporter/gpucost/metrics/names.py` by `python -m gpucost.metrics.docs`; a test
fails when this page and the code disagree.

- Money is USD: counters end in `_usd_total`, rates in `_usd_per_hour`.
- Pod join labels are exactly `namespace`, `pod`, `container`.
- `<workload labels>` are the configured pod-label mappings, by default
  `{workload}` (see docs/configuration.md and docs/kubernetes.md).
- The exporter adds no hostname label: the node comes from the scrape target's
  labels (relabel `__meta_kubernetes_pod_node_name` to `node`).
- Conservation: for every GPU, `gpucost_gpu_allocated_cost_usd_total` +
  `gpucost_gpu_unallocated_cost_usd_total` == `gpucost_gpu_cost_usd_total` at
  every scrape, and the per-container series (while retained) add up to the
  allocated cost.
- Whole-node cost (docs/node-cost.md): for every `resource`, the
  `gpucost_workload_cost_usd_total` series (and the per-container ones while
  retained) plus `gpucost_node_unallocated_cost_usd_total` add up to
  `gpucost_node_cost_usd_total`; the node's cost summed over resources is its
  price (`gpucost_node_price_usd_per_hour` summed over resources) times time,
  and `resource="gpu"` is the GPU families summed.
- A finished container's series stay for the retention time (`--retention`,
  default 10m) after its last increment, then go; the per-workload and per-GPU
  counters stay, so long windows survive pod churn.

| name | type | labels | stability | meaning |
|---|---|---|---|---|
"""


def render_metrics_doc() -> str:
    rows = []
    for spec in EXPORTER_METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels)
        if spec.workload:
            labels = f"{labels}, `<workload labels>`" if labels else "`<workload labels>`"
        kind = "gauge (info)" if spec.name.endswith("_info") else spec.type
        rows.append(f"| `{spec.name}` | {kind} | {labels or '—'} | {spec.stability} | {spec.help} |")
    intro = _INTRO.format(workload=", ".join(f"`{name}`" for name in DEFAULT_WORKLOAD_LABELS))
    return intro + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render_metrics_doc(), end="")
