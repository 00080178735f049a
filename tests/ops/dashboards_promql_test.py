#!/usr/bin/env python3
"""Every PromQL expression of every bundled dashboard returns data from a real
Prometheus scraping a real redmap under a real workload.

Brings up the demo (scripts/demo/demo.py: redmap, loadgen -> frontend -> api ->
redis and a lossy storage sink in network namespaces, Prometheus with the
rules; rule windows shortened). Prometheus scrapes redmap twice: as is (no
Kubernetes labels, no cluster label: a plain host) and through relabeling
that adds the labels a Kubernetes node's redmap carries. For each dashboard
it substitutes the template variables as Grafana does ($__rate_interval,
$__range, $__interval -> durations that fit a 2 s scrape interval) in three
selections: the defaults (All -> the allValue `.*`); cluster="" (only the
series without those labels); and a Kubernetes selection (cluster demo,
namespace shop, workload and service api). Every panel query runs through
Prometheus' HTTP API and must answer data (above zero where the workload
moves it); each variable's label_values() runs through the series API; a
broken expression is shown to be caught (the checker can fail). Usage: dashboards_promql_test.py BUILD_DIR. Needs root.
"""
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "demo"))
import demo  # noqa: E402
import report  # noqa: E402

# Grafana's built-ins: $__rate_interval is max(4 x scrape interval, $__interval
# + scrape interval); with the demo's 2 s scrapes 30 s holds enough samples.
BUILTINS = {"__rate_interval": "30s", "__range": "1m", "__interval": "2s"}
WAIT_SECONDS = 180
# Panels the workload must move, not merely populate: some series must be > 0
# (the rest may legitimately be all zero, e.g. dropped events).
NONZERO = {"Requests/s", "Request rate", "Error ratio (5xx)", "Latency p50 / p95 / p99",
           "Top routes by errors", "Outgoing request rate", "Server vs client view (p99)",
           "Service map", "Edges", "Failed requests per edge", "Connect latency p99", "RTT p99",
           "Retransmitted segments/s", "Retransmit ratio", "Resets/s", "Failed connects/s",
           "Throughput", "Events/s", "Parse errors/s and spans/s", "CPU", "Memory (RSS)",
           "Scrape duration"}
ALLOW_ZERO = {("Parse errors/s and spans/s", "A")}  # the demo's HTTP parses cleanly


def must_move(check):
    return check[1] in NONZERO and (check[1], check[2]) not in ALLOW_ZERO


def has_data(answer, nonzero):
    result = answer["data"]["result"]
    if not nonzero:
        return bool(result)
    return any(float(r["value"][1]) > 0 for r in result)  # NaN > 0 is False


def load_dashboards():
    out = {}
    for path in sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json"))):
        with open(path) as f:
            out[os.path.basename(path)] = json.load(f)
    return out


def substitute(expr, values):
    """Replaces ${name} and $name (longest names first) as Grafana does."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${%s}" % name, values[name]).replace("$" + name, values[name])
    leftover = re.findall(r"\$\{?[A-Za-z_]\w*", expr)  # $1 is a regex group
    if leftover:
        raise AssertionError("unsubstituted variables %s in %s" % (leftover, expr))
    return expr


def defaults(dashboard):
    """Each variable at its default: All -> its allValue."""
    values = dict(BUILTINS)
    for v in dashboard["templating"]["list"]:
        if v["type"] == "datasource":
            continue
        current = v.get("current", {}).get("value")
        all_selected = current in ("$__all", ["$__all"])
        assert all_selected and v.get("includeAll") and v.get("allValue") == ".*", (
            "variable %s must default to All with allValue .*" % v["name"])
        values[v["name"]] = v["allValue"]
    return values


def panel_exprs(dashboard):
    for panel in dashboard["panels"]:
        for p in [panel] + panel.get("panels", []):
            for t in p.get("targets", []):
                if "expr" in t:
                    yield p["title"], t["refId"], t["expr"]


def label_values(d, query, label):
    url = d.url("prometheus") + "/api/v1/series?" + urllib.parse.urlencode(
        {"match[]": query, "start": str(time.time() - 600)})
    with urllib.request.urlopen(url, timeout=30) as r:
        series = json.load(r)["data"]
    return sorted({s[label] for s in series if s.get(label)})


def main():
    build_dir = sys.argv[1]
    dashboards = load_dashboards()
    assert len(dashboards) == 4, "expected 4 dashboards, found %s" % list(dashboards)
    checks = []  # (dashboard, panel, refId, expr as sent)
    for name, dash in dashboards.items():
        values = defaults(dash)
        for title, ref, expr in panel_exprs(dash):
            checks.append((name, title, ref, substitute(expr, values)))

    # Series without any Kubernetes or cluster label only (a plain host):
    # cluster="" matches exactly those, every other variable stays All.
    for name, dash in dashboards.items():
        values = dict(defaults(dash), cluster="")
        for title, ref, expr in panel_exprs(dash):
            assert 'cluster=~"$cluster"' in expr, "%s / %s: no cluster filter" % (name, title)
            checks.append((name + " [no labels]", title, ref, substitute(expr, values)))

    # The same dashboards with a Kubernetes selection, against a second scrape
    # job whose series carry the identity labels (demo.K8S_LABELS_JOB): the
    # api in namespace "shop" of cluster "demo". The api sends no HTTP
    # requests itself, so the client-side panels are left out there.
    selection = {
        "redmap-red.json": {"cluster": "demo", "namespace": "shop", "workload": "api",
                            "service": "api"},
        "redmap-service-map.json": {"cluster": "demo", "namespace": "shop", "service": "api"},
        "redmap-network.json": {"cluster": "demo", "client_namespace": "shop",
                                 "server_namespace": "shop"},
        "redmap-health.json": {"cluster": "demo"},
    }
    for name, dash in dashboards.items():
        values = dict(defaults(dash), **selection[name])
        for title, ref, expr in panel_exprs(dash):
            if name == "redmap-red.json" and "http_client_request_duration_seconds" in expr:
                continue
            checks.append((name + " [k8s]", title, ref, substitute(expr, values)))

    print("%d panel expressions (3 selections) in %d dashboards" % (len(checks), len(dashboards)),
          flush=True)
    d = demo.Demo(build_dir=build_dir, workdir=tempfile.mkdtemp(prefix="redmap-dash-"),
                  fast=True, free_ports=True, rps=10, k8s_labels_job=True)
    d.start()
    failures = []
    try:
        # The first minute fills the $__range window; wait for every query.
        start = time.time()
        pending = list(checks)
        errors = {}
        while pending and time.time() - start < WAIT_SECONDS:
            still = []
            for c in pending:
                answer = d.query(c[3])
                if answer.get("status") != "success":
                    errors[c] = answer.get("error", answer)
                    continue  # invalid PromQL never gets better
                if not has_data(answer, must_move(c)):
                    still.append(c)
            pending = still
            if pending:
                time.sleep(3)
        print("waited %.0f s for data" % (time.time() - start))
        for c, err in errors.items():
            failures.append("%s / %s / %s: query error %s\n    %s" % (c[0], c[1], c[2], err, c[3]))
        for c in pending:
            failures.append("%s / %s / %s: no data%s\n    %s" % (
                c[0], c[1], c[2], " above 0" if must_move(c) else "", c[3]))

        # The Node Graph's frames: after the panel's renames (client -> source,
        # server -> target, the value -> mainstat) nodes need id (and title),
        # edges id, source and target, and every edge end must be a node.
        smap = dashboards["redmap-service-map.json"]
        graph = next(p for p in smap["panels"] if p["type"] == "nodegraph")
        renames = graph["transformations"][0]["options"]["renameByName"]
        targets = {t["refId"]: substitute(t["expr"], defaults(smap)) for t in graph["targets"]}
        nodes = [r["metric"] for r in d.query(targets["nodes"])["data"]["result"]]
        edges = [r["metric"] for r in d.query(targets["edges"])["data"]["result"]]
        node_ids = {n.get("id") for n in nodes}
        if renames.get("client") != "source" or renames.get("server") != "target":
            failures.append("node graph renames %s" % renames)
        if not nodes or any(set(n) != {"id", "title"} or n["id"] != n["title"] for n in nodes):
            failures.append("node graph nodes: %s" % nodes)
        if not edges or any(set(e) != {"client", "server", "id"} or
                            e["id"] != e["client"] + "->" + e["server"] for e in edges):
            failures.append("node graph edges: %s" % edges)
        orphans = {x for e in edges for x in (e["client"], e["server"])} - node_ids
        if orphans:
            failures.append("edge ends that are no node: %s" % orphans)
        for want in ("loadgen->frontend", "frontend->api"):
            if want not in {e.get("id") for e in edges}:
                failures.append("node graph lacks the edge %s: %s" % (want, edges))
        print("node graph: %d nodes, %d edges" % (len(nodes), len(edges)))

        # Variables: label_values() through the series API, defaults substituted.
        for name, dash in dashboards.items():
            values = defaults(dash)
            for v in dash["templating"]["list"]:
                if v["type"] != "query":
                    continue
                m = re.fullmatch(r"label_values\((.*), (\w+)\)", v["query"]["query"])
                assert m, "%s: variable %s: unexpected query %s" % (name, v["name"], v["query"])
                got = label_values(d, substitute(m.group(1), values), m.group(2))
                print("%s: $%s = %s" % (name, v["name"], got or "(none: label absent here)"))
                # The simulated Kubernetes job gives cluster, namespace and
                # workload values; every variable must list some.
                expected = {"cluster": ["demo"], "namespace": ["shop"], "client_namespace": ["shop"],
                            "server_namespace": ["shop"]}.get(v["name"])
                if not got or (expected and got != expected):
                    failures.append("%s: variable %s lists %s" % (name, v["name"], got))
                if v["name"] == "workload" and "api" not in got:
                    failures.append("%s: $workload lacks api: %s" % (name, got))
                if v["name"] == "service" and name == "redmap-red.json":
                    for svc in ("frontend", "api"):
                        if svc not in got:
                            failures.append("redmap-red.json: $service lacks %s: %s" % (svc, got))

        # The checker can fail: a misspelt metric returns nothing, a syntax
        # error is an error.
        typo = d.query(substitute(
            "sum(rate(http_server_request_duration_seconds_cont[$__rate_interval]))", BUILTINS))
        if typo.get("status") != "success" or typo["data"]["result"]:
            failures.append("a misspelt metric name returned data: %s" % typo)
        if d.query("sum(rate(http_server_request_duration_seconds_count[30s])").get(
                "status") != "error":
            failures.append("a syntax error was not reported as an error")
    finally:
        d.stop()
    if not failures:
        shutil.rmtree(d.workdir, ignore_errors=True)
    ok = len(checks) - len(errors) - len(pending)
    print("%d of %d dashboard expressions returned data" % (ok, len(checks)))
    report.finish(failures, ok)


if __name__ == "__main__":
    main()
