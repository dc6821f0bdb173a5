"""Write the figures of docs/benchmarks.md from bench/results/*.json.

The page's prose is kept; only the part between the two markers is replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["BEGIN", "END", "render_figures", "write_docs"]

BEGIN = "<!-- BEGIN GENERATED FIGURES (python -m gpucost_bench --write-docs) -->"
END = "<!-- END GENERATED FIGURES -->"


def _pct(value: float) -> str:
    return f"{value:+.3f} %" if abs(value) < 1 else f"{value:+.1f} %"


def _machine(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    machine = first["machine"]
    modes = sorted({str(r.get("mode", "?")) for r in results.values()})
    return [
        f"Machine: {machine['cpu_count']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
        f"{machine['platform']}; run {machine['date_utc']}; mode: {', '.join(modes)}.",
        "",
    ]


def _accuracy(result: Mapping[str, Any]) -> list[str]:
    trace, engine = result["trace"], result["engine"]
    check = engine["one_second_cross_check"]
    lines = [
        "### Attribution accuracy",
        "",
        f"Trace: seed {trace['seed']}, {trace['gpus']} GPUs ({trace['time_sliced_gpus']} time-sliced "
        f"{trace['replicas_per_shared_gpu']} ways), {trace['hours']} h, {trace['jobs']} jobs "
        f"({trace['jobs_under_60s']} under 60 s; median {trace['median_job_seconds']:.0f} s, "
        f"longest {trace['longest_job_seconds'] / 3600:.1f} h), {trace['teams']} teams.  "
        f"Engine: {engine['engine_calls']} engine calls standing for "
        f"{engine['equivalent_one_second_ticks']:,} one-second device ticks, {engine['engine_wall_seconds']:.1f} s; "
        f"against true 1-s ticks on {check['gpus']} GPUs over {check['seconds']} s the largest per-team "
        f"difference was ${check['max_team_difference_usd']:.1e}.",
        "",
        "Error per team against the exact ground truth (gpucost's definition of active and idle, integrated "
        "in continuous time):",
        "",
        "| team | truth USD | gpucost | request x hours, 1 min | utilization x price |",
        "|---|---:|---:|---:|---:|",
    ]
    for team, row in result["teams"].items():
        lines.append(
            f"| {team} | {row['truth_usd']:.2f} | {_pct(row['gpucost_error_pct'])} | "
            f"{_pct(row['request_hours_1m_error_pct'])} | {_pct(row['utilization_times_price_error_pct'])} |"
        )
    worst = result["max_abs_team_error_pct"]
    total = result["total"]
    lines += [
        f"| **all teams** | {total['truth_usd']:.2f} | {_pct(total['gpucost_error_pct'])} | "
        f"{_pct(total['request_hours_1m_error_pct'])} | {_pct(total['utilization_times_price_error_pct'])} |",
        f"| **worst team (abs)** | | {worst['gpucost']:.4f} % | {worst['request_hours_1m']:.1f} % | "
        f"{worst['utilization_times_price']:.1f} % |",
        "",
        f"Target: gpucost within {result['target']['gpucost_max_abs_team_error_pct']} % per team: "
        f"**{'met' if result['passed'] else 'NOT met'}**.",
        "",
        "Against the plain held integral (price x share x lifetime, blind to who kept a shared GPU busy), the "
        "largest per-team differences are: gpucost "
        f"{result['max_abs_team_difference_vs_held_pct']['gpucost']:.1f} %, request x hours "
        f"{result['max_abs_team_difference_vs_held_pct']['request_hours_1m']:.1f} %, utilization x price "
        f"{result['max_abs_team_difference_vs_held_pct']['utilization_times_price']:.1f} %.  gpucost's part of "
        "that is by design: on a time-sliced GPU active cost follows measured busy time, not the share.",
        "",
    ]
    return lines


_LIVE_NODE_METHODS = (("gpucost", "gpucost"), ("request_hours_1m", "request x hours, 1 min"),
                      ("utilization_times_price", "utilization x price"))


def _met(passed: bool) -> str:
    return "met" if passed else "NOT met"


def _live_node(result: Mapping[str, Any]) -> list[str]:
    trace, replay, labels = result["trace"], result["replay"], result["labels"]
    coverage, devices, target = result["coverage"], result["devices"], result["target"]
    short, every = result["short_pods"], result["all_pods"]
    lines = [
        "### Live node: short pods, exact edges",
        "",
        f"Trace: seed {trace['seed']}, {trace['gpus']} GPUs ({trace['time_sliced_replicas']} time-sliced replicas, "
        f"MIG {' + '.join(trace['mig_slices'])}, one held by an abandoned pod), "
        f"{trace['horizon_seconds'] / 3600:g} h, {trace['pods']} pods ({trace['short_pods']} of "
        f"{trace['short_pod_seconds'][0]:.0f}-{trace['short_pod_seconds'][1]:.0f} s, {trace['long_pods']} long, "
        f"{trace['abandoned_pods']} abandoned), device ids as {', '.join(trace['device_id_forms'])}.  "
        f"Replayed in {replay['wall_seconds']:.1f} s: {replay['ticks']:,} sampler ticks, "
        f"{replay['watch_syncs']:,} waits for the watch, kubelet poll every "
        f"{result['settings']['pod_resources_interval_seconds']:g} s (the default).",
        "",
        "Error per pod of the cost of holding its device (price x GPU-seconds) against share x life:",
        "",
        f"| method | {short['pods']} short pods: mean / p95 | mean signed | all {every['pods']} pods: mean / p95 |",
        "|---|---:|---:|---:|",
    ]
    for key, name in _LIVE_NODE_METHODS:
        ours, everyone = short[key], every[key]
        lines.append(
            f"| {name} | {ours['mean_abs_error_pct']:.2f} % / {ours['p95_abs_error_pct']:.1f} % | "
            f"{ours['mean_signed_error_pct']:+.2f} % | "
            f"{everyone['mean_abs_error_pct']:.2f} % / {everyone['p95_abs_error_pct']:.1f} % |"
        )
    worst = result["worst_short_pods"][0]
    lost_by_label = [f"{name} ${usd:.2f}" for name, usd in labels["lost_label_usd_by_label"].items() if usd > 0]
    lines += [
        "",
        f"Worst short pod: `{worst['pod']}` ran [{worst['start_seconds']:.1f} s, {worst['end_seconds']:.1f} s) "
        f"on `{worst['device_id']}` and was charged {worst['gpucost_gpu_seconds']:.1f} GPU-seconds instead of "
        f"{worst['truth_gpu_seconds']:.1f}.",
        "",
        f"Container cost ${labels['container_cost_usd']:.2f}; booked with a workload label empty that the pod had "
        f"at its start: ${labels['lost_label_usd']:.2f} ({labels['lost_label_share'] * 100:.2f} %, "
        f"{labels['lost_label_pods']} pods" + (f"; {', '.join(lost_by_label)}" if lost_by_label else "") + ").  "
        f"Pods charged: {coverage['pods_charged']} of {trace['pods']}; unmapped device ids: "
        f"{coverage['most_unmapped_device_ids']}; conservation per device within "
        f"{devices['conservation_max_relative']:.0e} (relative); each GPU's cost against catalog price x time "
        f"within {devices['gpu_cost_vs_price_max_relative_difference']:.0e}.",
        "",
        f"Targets: mean error of the short pods <= {target['mean_error_pct']:g} %: "
        f"**{_met(result['passed']['mean_error'])}**; share of cost with a lost label "
        f"{target['lost_label_share']:g}: **{_met(result['passed']['lost_label_share'])}**.",
        "",
    ]
    return lines


def _exporter_cost(result: Mapping[str, Any]) -> list[str]:
    lines = [
        "### Exporter cost",
        "",
        "| node | path | gpucost p50 / p99 | baseline p50 / p99 | ratio p50 | bytes (gpucost / baseline) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, case in result["in_process_render"].items():
        ours, stock = case["gpucost_render"], case["baseline_generate_latest"]
        lines.append(
            f"| {name} ({case['samples']} samples) | render every scrape, in process | "
            f"{ours['p50_ms']:.2f} / {ours['p99_ms']:.2f} ms | {stock['p50_ms']:.2f} / {stock['p99_ms']:.2f} ms | "
            f"**{case['ratio_p50']:.3f}x** | {ours['bytes']:,} / {stock['bytes']:,} |"
        )
    for name, case in result["http_scrape"].items():
        ours, stock = case["gpucost_exporter"], case["baseline_prometheus_client_http"]
        lines.append(
            f"| {name} | HTTP scrape, cached | {ours['p50_ms']:.2f} / {ours['p99_ms']:.2f} ms | "
            f"{stock['p50_ms']:.2f} / {stock['p99_ms']:.2f} ms | {case['ratio_p50']:.3f}x | "
            f"{ours['bytes']:,} / {stock['bytes']:,} |"
        )
    process = result["process"]
    kube = result["kubernetes_client"]
    lines += [
        "",
        f"Target render ratio <= {result['targets']['render_ratio_p50']}x.",
        "",
        f"Exporter process (simulated 8 GPUs, 1 s sampling, scraped every 15 s, {process['window_seconds']:.0f} s): "
        f"CPU {process['cpu_percent_of_one_core']:.2f} % of one core ({process['cpu_seconds']:.2f} s), "
        f"RSS {process['rss_mib']:.1f} MiB, peak {process['peak_rss_mib']:.1f} MiB "
        f"(targets: < {process['targets']['cpu_percent_of_one_core']} %, <= {process['targets']['rss_mib']:.0f} MiB; "
        f"**{'met' if process['passed'] else 'NOT met'}**).  " + _kubernetes_client(process, kube),
        "",
    ]
    return lines


def _kubernetes_client(process: Mapping[str, Any], kube: Mapping[str, Any]) -> str:
    # Results from before the move to lightkube name neither the client nor `import_mib`.
    client = kube.get("client", "the official kubernetes client")
    added = float(kube.get("import_mib", kube.get("kubernetes_import_mib", 0.0)))
    return (f"The Kubernetes client ({client}) adds {added:.1f} MiB ({kube['method']}): "
            f"{process['rss_with_kubernetes_client_mib']:.1f} MiB with Kubernetes attribution, before gRPC and "
            "the watched pods (measured with both in the next section).")


def _exporter_k8s_memory(result: Mapping[str, Any]) -> list[str]:
    title = "### Exporter memory with Kubernetes attribution"
    if result.get("status") != "run":
        return [title, "", f"Not run: {result.get('reason', '')}.", ""]
    process, imports, before = result["process"], result["client_imports"], result["before"]
    target = float(result["target"]["peak_rss_mib"])
    return [
        title,
        "",
        f"Real kube-apiserver {result['kube_apiserver']} with etcd, {process['pods_on_node']} pods bound to the node "
        f"in {process['namespaces']} namespaces ({process['gpu_holders']} of them holding the node's GPUs through "
        "the gRPC fake kubelet), the exporter as a ServiceAccount (token kubeconfig, read-only rules), 1 s sampling, "
        f"scraped every 15 s for {process['window_seconds']:.0f} s ({process['scrapes']} scrapes, one pod relabelled "
        f"before each): RSS {process['rss_mib']:.1f} MiB, peak (VmHWM) **{process['peak_rss_mib']:.1f} MiB** "
        f"(target <= {target:.0f} MiB: **{'met' if result['passed'] else 'NOT met'}**).",
        "",
        f"Before, with {before['client']}, the same benchmark at commit {before['commit']}: RSS "
        f"{before['rss_mib']:.1f} MiB, peak {before['peak_rss_mib']:.1f} MiB; now "
        f"{result['ratio_peak_to_before']:.2f}x of that peak.  The clients' import alone, {imports['method']}: "
        f"lightkube + httpx2 {imports['lightkube_client_mib']:.1f} MiB, `kubernetes.client` "
        f"{imports['kubernetes_client_mib']:.1f} MiB (ratio {imports['ratio_lightkube_to_kubernetes']:.2f}x).",
        "",
    ]


def _alert_latency(result: Mapping[str, Any]) -> list[str]:
    return [
        "### Alert latency",
        "",
        f"{result['alert']} (`for: {result['alert_for_seconds']:.0f}s`), scrape and evaluation every "
        f"{result['evaluation_interval_seconds']} s, Alertmanager group_wait {result['group_wait_seconds']:.0f} s: "
        f"expected {result['expected_min_seconds']:.0f} to {result['expected_max_seconds']:.0f} s, "
        f"measured **{result['measured_seconds']:.1f} s** from the budget change to the Slack sink "
        f"(message \"{result['message_title']}\", budget used {result['message_budget_used']}).",
        "",
    ]


def _asgi(result: Mapping[str, Any]) -> list[str]:
    return [
        "### ASGI middleware overhead",
        "",
        f"{int(result['requests']):,} requests each: bare {result['bare_us_per_request']:.1f} µs, wrapped "
        f"{result['wrapped_us_per_request']:.1f} µs per request: +{result['overhead_us_per_request']:.1f} µs, "
        f"ratio {result['ratio']:.2f}x.",
        "",
    ]


def _engine_cell(engine: Mapping[str, Any] | str, group: str) -> str:
    if not isinstance(engine, Mapping) or group not in engine["groups"]:
        return "n/a"
    figures = engine["groups"][group]
    return f"{figures['evaluation_seconds']:.3f} s / {figures['max_seen_evaluation_seconds']:.3f} s"


def _verdict(engine: Mapping[str, Any] | str, target: float) -> str:
    if not isinstance(engine, Mapping):
        return f"not run ({engine})"
    errors = engine["groups_with_rule_errors"]
    over = sorted(f"`{group}`" for group, figures in engine["groups"].items()
                  if float(figures["max_seen_evaluation_seconds"]) >= target)
    verdict = (f"every group under {target:.0f} s" if not over
               else f"over {target:.0f} s: {', '.join(over)}")
    live = engine["pods"]["pods_with_series_in_last_5m"]
    caveat = ("" if live else "; it saw no live samples (its scrapes of the fleet timed out), so the groups "
              "that read the last 5 minutes evaluated over empty input and their times are not comparable")
    return (f"worst {engine['worst_seen_evaluation_seconds']:.2f} s, **{verdict}**"
            + (f"; rule errors in {', '.join(sorted(errors))}" if errors else "; no rule errors") + caveat)


def _rules_scale(result: Mapping[str, Any]) -> list[str]:
    if result.get("status") != "run":
        return ["### Rules at scale", "", f"Not run: {result.get('reason', '')}.", ""]
    size, data, seconds = result["size"], result["input"], result["seconds"]
    prometheus, vm = result["prometheus"], result["victoriametrics"]
    target = float(result["target"]["group_evaluation_seconds_max"])
    full = "the target size" if result["target"]["this_run_is_target_size"] else "**smaller than the target**"
    lines = [
        "### Rules at scale",
        "",
        f"{size['nodes']:,} nodes x 8 GPUs x {size['days']} days ({full}: "
        f"{result['target']['nodes']:,} x 8 x {result['target']['days']} d): {data['series']:,} input series, "
        f"{data['samples'] / 1e6:,.1f} M samples ({data['openmetrics_mib'] / 1024:,.1f} GiB of OpenMetrics in "
        f"{data['chunks']} chunks, {data['blocks']} blocks), {data['distinct_pods']:,} distinct pods from churn every "
        f"{size['pod_lifetime_hours']:g} h"
        + (f" ({data['serving_pods']:,} of them serving pods whose app exports share-seconds, requests and tokens "
           f"for two business units)" if "serving_pods" in data else "")
        + f"; raw samples every {size['step_seconds']} s for the last "
        f"{size['full_resolution_hours']:g} h and every {size['history_step_seconds']} s before that.  Written in "
        f"{seconds['generate']:.0f} s and backfilled by promtool in {seconds['promtool']:.0f} s "
        f"({seconds['generate_and_backfill_wall']:.0f} s wall, overlapped).  Every group evaluated every "
        f"{size['evaluation_interval_seconds']} s"
        + (f" (changed from their own: {', '.join(f'`{k}` {v}' for k, v in size['group_intervals_changed'].items())})"
           if size["group_intervals_changed"] else "") + ".",
        "",
        "Evaluation time per rule group, typical / worst seen (the worst is usually the first, cold evaluation). "
        "Prometheus: the last evaluation; vmalert: the mean of its iterations.",
        "",
        "| rule group | Prometheus | VictoriaMetrics + vmalert |",
        "|---|---:|---:|",
    ]
    order = sorted(prometheus["groups"], key=lambda g: -float(prometheus["groups"][g]["max_seen_evaluation_seconds"]))
    lines += [f"| `{group}` | {_engine_cell(prometheus, group)} | {_engine_cell(vm, group)} |" for group in order]
    lines += [
        "",
        f"Prometheus: {_verdict(prometheus, target)}.  VictoriaMetrics: {_verdict(vm, target)}.",
    ]
    if isinstance(vm, Mapping):
        vm_seconds = vm["seconds"]
        differ = {name: (count, vm["recorded_series"].get(name, 0))
                  for name, count in prometheus["recorded_series"].items()
                  if count != vm["recorded_series"].get(name, 0)}
        if not vm["pods"]["pods_with_series_in_last_5m"]:
            comparison = "Recorded series were not compared: VictoriaMetrics had no live samples."
        elif not differ:
            comparison = "Both recorded the same number of series for every recorded name."
        else:
            comparison = ("Recorded series that differ (Prometheus, VictoriaMetrics): "
                          + ", ".join(f"`{name}` {a} / {b}" for name, (a, b) in differ.items()) + ".")
        lines += [
            "",
            f"VictoriaMetrics got the same blocks through `vmctl prometheus` in {vm_seconds['vmctl_import']:.0f} s "
            f"(then {vm_seconds['merges_after_import']:.0f} s of background merges before vmalert started).  "
            + comparison,
        ]
    workload_key = "namespace_workload:gpucost_cost_usd_per_hour:rate5m"
    pods = prometheus["pods"]
    lines += [
        "",
        f"Recorded outputs follow workloads, not pods: `{workload_key}` holds "
        f"{prometheus['recorded_series'].get(workload_key, 0)} series ({data['workloads_in_catalog']} workloads in "
        f"the catalog, active and idle) whatever the {data['distinct_pods']:,} pods; per-pod outputs follow the "
        f"{pods['pods_with_series_in_last_5m']:,} live pods ({pods['pods_with_series_in_last_1d']:,} in the last day).",
        "",
    ]
    return lines


def render_figures(results: Mapping[str, Mapping[str, Any]]) -> str:
    if not results:
        return "No results yet: run `make bench BENCH_ARGS=--write-docs`.\n"
    lines = _machine(results)
    sections = {"accuracy": _accuracy, "live_node": _live_node, "exporter_cost": _exporter_cost,
                "exporter_k8s_memory": _exporter_k8s_memory, "alert_latency": _alert_latency,
                "asgi_overhead": _asgi, "rules_scale": _rules_scale}
    for name, render in sections.items():
        if name in results:
            lines += render(results[name])
    return "\n".join(lines)


def write_docs(path: Path, results: Mapping[str, Mapping[str, Any]]) -> None:
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{render_figures(results)}{END}{tail}")
