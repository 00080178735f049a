#!/usr/bin/env python3
"""Writes redmap's Grafana dashboards (dashboards/*.json) from one description,
so that every dashboard has the same variables, data source handling and
panel defaults. Edit this file, run it, commit both:

    python3 dashboards/generate.py            # rewrites dashboards/*.json
    python3 dashboards/generate.py --check    # exit 1 if a JSON file is stale

Variables: `datasource` (any Prometheus), `cluster`, and per dashboard
namespace/workload/service (RED), namespace/service (service map),
client namespace/client/server namespace/server (network), instance (health). Every label variable defaults to
All with allValue `.*`, so the queries match series where the label is empty
or absent (a machine without Kubernetes, a Prometheus without a cluster
label).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_VERSION = 42  # Grafana 12/13 dashboard JSON (what @grafana/schema describes)
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
RANGE = "$__range"


# ---- variables ---------------------------------------------------------------
def datasource_var():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "hide": 0, "refresh": 1,
            "regex": "", "options": [], "skipUrlSync": False}


def label_var(name, label, query, title):
    return {"name": name, "label": title, "type": "query", "datasource": DS,
            "query": {"query": "label_values(%s, %s)" % (query, label), "refId": name},
            "includeAll": True, "multi": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [], "refresh": 2, "regex": "", "sort": 1, "hide": 0,
            "skipUrlSync": False}


CLUSTER = label_var("cluster", "cluster", "target_info", "Cluster")
RED_SEL = ('cluster=~"$cluster", k8s_namespace_name=~"$namespace", '
           'k8s_deployment_name=~"$workload", service_name=~"$service"')


# ---- panels ------------------------------------------------------------------
class Layout:
    def __init__(self):
        self.panels, self.x, self.y, self.row_h, self.next_id = [], 0, 0, 0, 1

    def add(self, panel, w=12, h=8):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)

    def row(self, title):
        self.x, self.y = 0, self.y + self.row_h
        self.row_h = 1
        self.panels.append({"type": "row", "title": title, "collapsed": False, "id": self.next_id,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.x, self.y, self.row_h = 0, self.y + 1, 0


def target(expr, legend="", ref="A", instant=False, table=False):
    t = {"datasource": DS, "editorMode": "code", "expr": expr, "refId": ref,
         "legendFormat": legend or "__auto", "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def targets(*exprs):
    """exprs: (expr, legend) pairs, refIds A, B, ..."""
    return [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(exprs)]


def timeseries(title, desc, tgts, unit="short", stack=False, max_=None):
    defaults = {"unit": unit, "custom": {
        "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
        "spanNulls": False, "stacking": {"mode": "normal" if stack else "none", "group": "A"}}}
    if max_ is not None:
        defaults["max"] = max_
        defaults["min"] = 0
    return {"type": "timeseries", "title": title, "description": desc, "datasource": DS,
            "targets": tgts, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                   "showLegend": True, "calcs": []},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title, desc, expr, unit, thresholds=None):
    steps = [{"color": "green", "value": None}] + [
        {"color": c, "value": v} for v, c in (thresholds or [])]
    return {"type": "stat", "title": title, "description": desc, "datasource": DS,
            "targets": [target(expr)],
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": {
                "mode": "absolute", "steps": steps}}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "orientation": "auto", "colorMode": "value", "graphMode": "area",
                        "justifyMode": "auto", "textMode": "auto", "wideLayout": True,
                        "showPercentChange": False, "percentChangeColorMode": "standard"}}


def table(title, desc, tgts, renames, units=None, sort=None):
    """Instant queries in table format, merged into one row per label set."""
    overrides = [{"matcher": {"id": "byName", "options": name},
                  "properties": [{"id": "unit", "value": unit}]}
                 for name, unit in (units or {}).items()]
    panel = {"type": "table", "title": title, "description": desc, "datasource": DS,
             "targets": tgts, "fieldConfig": {"defaults": {}, "overrides": overrides},
             "options": {"showHeader": True, "frameIndex": 0, "cellHeight": "sm"},
             "transformations": [
                 {"id": "merge", "options": {}},
                 {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                "renameByName": renames}}]}
    if sort:
        panel["options"]["sortBy"] = [{"displayName": sort, "desc": True}]
    return panel


def instant(*exprs):
    return [target(e, "", chr(ord("A") + i), instant=True, table=True)
            for i, e in enumerate(exprs)]


def dashboard(uid, title, desc, variables, layout, tags):
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["redmap"] + tags,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True,
        "graphTooltip": 1, "refresh": "30s", "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"}, "fiscalYearStartMonth": 0, "liveNow": False,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"title": "redmap dashboards", "type": "dashboards", "tags": ["redmap"],
                   "asDropdown": True, "includeVars": True, "keepTime": True,
                   "icon": "external link", "targetBlank": False, "tooltip": "", "url": ""}],
        "templating": {"list": [datasource_var()] + variables},
        "panels": layout.panels,
    }


# ---- Service overview (RED) -----------------------------------------------------
def red_overview():
    s = "{%s}" % RED_SEL
    err = '{%s, http_response_status_code=~"5.."}' % RED_SEL
    srv = "http_server_request_duration_seconds"
    cli = "http_client_request_duration_seconds"

    def ratio(fam, by):
        return ("(sum by (%(by)s) (rate(%(f)s_count%(e)s[%(r)s])) or sum by (%(by)s) "
                "(rate(%(f)s_count%(s)s[%(r)s])) * 0) / sum by (%(by)s) (rate(%(f)s_count%(s)s[%(r)s]))"
                % {"by": by, "f": fam, "e": err, "s": s, "r": RATE})

    def q(p, fam, by):
        return "histogram_quantile(%s, sum by (%s, le) (rate(%s_bucket%s[%s])))" % (p, by, fam, s, RATE)

    L = Layout()
    L.add(stat("Requests/s", "Requests answered by the selected services.",
               "sum(rate(%s_count%s[%s]))" % (srv, s, RATE), "reqps"), w=6, h=4)
    L.add(stat("Error ratio", "Share of requests answered with a 5xx.",
               "(sum(rate(%s_count%s[%s])) or vector(0)) / sum(rate(%s_count%s[%s]))"
               % (srv, err, RATE, srv, s, RATE), "percentunit", [(0.01, "orange"), (0.05, "red")]),
          w=6, h=4)
    L.add(stat("p99 latency", "Server-side p99 over all selected services.",
               "histogram_quantile(0.99, sum by (le) (rate(%s_bucket%s[%s])))" % (srv, s, RATE),
               "s", [(0.25, "orange"), (0.5, "red")]), w=6, h=4)
    L.add(stat("Services", "Services with traffic.",
               "count(sum by (service_name) (rate(%s_count%s[%s])))" % (srv, s, RATE), "none"),
          w=6, h=4)
    L.row("Server side: requests the services answer")
    L.add(timeseries("Request rate", "Requests per second answered, per service.", targets(
        ("sum by (service_name) (rate(%s_count%s[%s]))" % (srv, s, RATE), "{{service_name}}")),
        "reqps"))
    L.add(timeseries("Error ratio (5xx)", "Share of each service's requests answered with 5xx.",
                     targets((ratio(srv, "service_name"), "{{service_name}}")), "percentunit"))
    L.add(timeseries("Latency p50 / p95 / p99", "Server-side duration quantiles per service, "
                     "from the histogram buckets.", targets(
                         (q("0.50", srv, "service_name"), "p50 {{service_name}}"),
                         (q("0.95", srv, "service_name"), "p95 {{service_name}}"),
                         (q("0.99", srv, "service_name"), "p99 {{service_name}}")), "s"), w=24)
    L.add(timeseries("Responses by status code", "Requests per second by HTTP status code.", targets(
        ("sum by (http_response_status_code) (rate(%s_count%s[%s]))" % (srv, s, RATE),
         "{{http_response_status_code}}")), "reqps", stack=True))
    L.add(timeseries("p99 by route", "Server-side p99 per route.", targets(
        (q("0.99", srv, "service_name, http_route"), "{{service_name}} {{http_route}}")), "s"))
    L.add(table("Top routes by traffic", "The busiest routes over the dashboard's time range.",
                instant("topk(10, sum by (service_name, http_route) (rate(%s_count%s[%s])))"
                        % (srv, s, RANGE)),
                {"Value": "requests/s", "service_name": "service", "http_route": "route"},
                {"requests/s": "reqps"}, "requests/s"), w=8)
    L.add(table("Top routes by errors", "Routes answering the most 5xx over the time range.",
                instant("topk(10, sum by (service_name, http_route) (rate(%s_count%s[%s])) > 0)"
                        % (srv, err, RANGE)),
                {"Value": "5xx/s", "service_name": "service", "http_route": "route"},
                {"5xx/s": "reqps"}, "5xx/s"), w=8)
    L.add(table("Top routes by p99 latency", "The slowest routes over the time range.",
                instant("topk(10, histogram_quantile(0.99, sum by (service_name, http_route, le) "
                        "(rate(%s_bucket%s[%s]))))" % (srv, s, RANGE)),
                {"Value": "p99", "service_name": "service", "http_route": "route"},
                {"p99": "s"}, "p99"), w=8)
    L.row("Client side: requests the services make")
    L.add(timeseries("Outgoing request rate", "Requests per second the selected services send, "
                     "per destination.", targets(
                         ("sum by (service_name, server_address, server_port) (rate(%s_count%s[%s]))"
                          % (cli, s, RATE), "{{service_name}} → {{server_address}}:{{server_port}}")),
                     "reqps"))
    L.add(timeseries("Outgoing error ratio (5xx)", "Share of outgoing requests answered 5xx.",
                     targets((ratio(cli, "service_name, server_address"),
                              "{{service_name}} → {{server_address}}")), "percentunit"))
    L.add(timeseries("Outgoing p99", "Client-side p99 per destination.", targets(
        (q("0.99", cli, "service_name, server_address"), "{{service_name}} → {{server_address}}")),
        "s"))
    edge = 'cluster=~"$cluster", server=~"$service"'
    L.add(timeseries("Server vs client view (p99)", "p99 of calls into the selected services as the "
                     "server measured it and as its callers measured it (service graph); the gap "
                     "is network, queueing and connection setup.", targets(
                         ("histogram_quantile(0.99, sum by (server, le) (rate("
                          "traces_service_graph_request_server_seconds_bucket{%s}[%s])))" % (edge, RATE),
                          "server {{server}}"),
                         ("histogram_quantile(0.99, sum by (server, le) (rate("
                          "traces_service_graph_request_client_seconds_bucket{%s}[%s])))" % (edge, RATE),
                          "callers of {{server}}")), "s"))
    base = "http_server_request_duration_seconds_count"
    variables = [
        CLUSTER,
        label_var("namespace", "k8s_namespace_name", '%s{cluster=~"$cluster"}' % base, "Namespace"),
        label_var("workload", "k8s_deployment_name",
                  '%s{cluster=~"$cluster", k8s_namespace_name=~"$namespace"}' % base, "Workload"),
        label_var("service", "service_name",
                  '%s{cluster=~"$cluster", k8s_namespace_name=~"$namespace", '
                  'k8s_deployment_name=~"$workload"}' % base, "Service"),
    ]
    return dashboard("redmap-red", "redmap / Service overview (RED)",
                     "Rate, errors and duration per service and route, as redmap observes them "
                     "at the socket (server and client side).", variables, L, ["red"])


# ---- Service map --------------------------------------------------------------------
def service_map():
    sel = 'cluster=~"$cluster", server_service_namespace=~"$namespace", server=~"$service"'
    tot = "traces_service_graph_request_total{%s}" % sel
    L = Layout()
    # Nodes: every server with the requests/s it answered, and every client
    # that is no server with 0; `title` is what the node shows.
    nodes = ('label_replace(sum by (id) (label_replace(sum by (server) (rate(%(t)s[%(r)s])), "id", "$1", "server", "(.*)")) '
             'or sum by (id) (label_replace(sum by (client) (rate(%(t)s[%(r)s])) * 0, "id", "$1", "client", "(.*)")), '
             '"title", "$1", "id", "(.*)")'
             % {"t": tot, "r": RANGE})
    edges = ('label_join(sum by (client, server) (rate(%s[%s])), "id", "->", "client", "server")'
             % (tot, RANGE))
    graph = {"type": "nodegraph", "title": "Service map",
             "description": "Nodes are services (main stat: requests/s they answered), edges are "
                            "calls (main stat: requests/s), over the dashboard's time range, from "
                            "the traces_service_graph_* series.",
             "datasource": DS, "targets": [
                 target(nodes, "", "nodes", instant=True, table=True),
                 target(edges, "", "edges", instant=True, table=True)],
             "fieldConfig": {"defaults": {}, "overrides": []},
             "options": {"nodes": {"mainStatUnit": "reqps"}, "edges": {"mainStatUnit": "reqps"},
                         "layoutAlgorithm": "layered", "zoomMode": "cooperative"},
             "transformations": [{"id": "organize", "options": {
                 "excludeByName": {"Time": True},
                 "renameByName": {"Value #nodes": "mainstat", "Value #edges": "mainstat",
                                  "client": "source", "server": "target"}}}]}
    L.add(graph, w=24, h=14)
    by = "client, server, connection_type"
    L.add(table("Edges", "Every edge over the time range: rate, 5xx ratio, p99 as the server "
                "and as the client measured it (client-side only where redmap sees the caller).",
                instant(
                    "sum by (%s) (rate(%s[%s]))" % (by, tot, RANGE),
                    "sum by (%s) (rate(traces_service_graph_request_failed_total{%s}[%s])) / "
                    "sum by (%s) (rate(%s[%s]))" % (by, sel, RANGE, by, tot, RANGE),
                    "histogram_quantile(0.99, sum by (%s, le) (rate("
                    "traces_service_graph_request_server_seconds_bucket{%s}[%s])))" % (by, sel, RANGE),
                    "histogram_quantile(0.99, sum by (%s, le) (rate("
                    "traces_service_graph_request_client_seconds_bucket{%s}[%s])))" % (by, sel, RANGE)),
                {"Value #A": "requests/s", "Value #B": "error ratio", "Value #C": "p99 (server)",
                 "Value #D": "p99 (client)", "connection_type": "type"},
                {"requests/s": "reqps", "error ratio": "percentunit", "p99 (server)": "s",
                 "p99 (client)": "s"}, "requests/s"), w=24, h=10)
    L.add(timeseries("Requests per edge", "Requests per second from client to server.", targets(
        ("sum by (client, server) (rate(%s[%s]))" % (tot, RATE), "{{client}} → {{server}}")),
        "reqps"))
    L.add(timeseries("Failed requests per edge", "5xx answers per second per edge.", targets(
        ("sum by (client, server) (rate(traces_service_graph_request_failed_total{%s}[%s]))"
         % (sel, RATE), "{{client}} → {{server}}")), "reqps"))
    variables = [
        CLUSTER,
        label_var("namespace", "server_service_namespace",
                  'traces_service_graph_request_total{cluster=~"$cluster"}', "Namespace"),
        label_var("service", "server",
                  'traces_service_graph_request_total{cluster=~"$cluster", '
                  'server_service_namespace=~"$namespace"}', "Service (server)"),
    ]
    return dashboard("redmap-service-map", "redmap / Service map",
                     "Who calls whom: nodes and edges from redmap's service-graph series.",
                     variables, L, ["service-map"])


# ---- Network ----------------------------------------------------------------------------
def network():
    sel = ('cluster=~"$cluster", client_service_namespace=~"$client_namespace", client=~"$client", '
           'server_service_namespace=~"$server_namespace", server=~"$server"')
    cs = 'side="client", ' + sel
    L = Layout()

    def q(fam, s, by="client, server"):
        return ("histogram_quantile(0.99, sum by (%s, le) (rate(%s_bucket{%s}[%s])))"
                % (by, fam, s, RATE))
    L.add(timeseries("Connect latency p99", "SYN sent → established, client side, per edge.",
                     targets((q("redmap_tcp_connect_duration_seconds", cs), "{{client}} → {{server}}")),
                     "s"))
    L.add(timeseries("RTT p99", "Smoothed RTT of connections when they close, per edge.",
                     targets((q("redmap_tcp_rtt_seconds", sel), "{{client}} → {{server}}")), "s"))
    L.add(timeseries("Retransmitted segments/s", "By kind: data (loss on the path), syn "
                     "(server not answering), synack.", targets(
                         ("sum by (client, server, kind) (rate(redmap_tcp_retransmits_total{%s}[%s]))"
                          % (sel, RATE), "{{client}} → {{server}} {{kind}}")), "pps"))
    L.add(timeseries("Retransmit ratio", "Retransmitted data segments over segments sent "
                     "(payload bytes / 1448). Bytes are counted when connections close.", targets(
                         ("sum by (client, server, server_port) (rate(redmap_tcp_retransmits_total"
                          '{kind="data", %s}[%s])) / (sum by (client, server, server_port) '
                          "(rate(redmap_tcp_sent_bytes_total{%s}[%s])) / 1448)" % (sel, RATE, sel, RATE),
                          "{{client}} → {{server}}:{{server_port}}")), "percentunit"))
    L.add(timeseries("Zero-window segments/s", "local: this side stopped reading; peer: the "
                     "other side did.", targets(
                         ("sum by (client, server, side, window) (rate("
                          "redmap_tcp_zero_window_segments_total{%s}[%s]))" % (sel, RATE),
                          "{{client}} → {{server}} ({{side}}, {{window}})")), "pps"))
    L.add(timeseries("Resets/s", "RSTs sent and received per edge and side.", targets(
        ("sum by (client, server, side) (rate(redmap_tcp_resets_sent_total{%s}[%s]))" % (sel, RATE),
         "sent {{client}} → {{server}} ({{side}})"),
        ("sum by (client, server, side) (rate(redmap_tcp_resets_received_total{%s}[%s]))"
         % (sel, RATE), "received {{client}} → {{server}} ({{side}})")), "pps"))
    L.add(timeseries("Failed connects/s", "Handshakes that never completed, by reason.", targets(
        ("sum by (client, server, server_port, reason) (rate(redmap_tcp_connect_failures_total"
         "{%s}[%s]))" % (cs, RATE), "{{client}} → {{server}}:{{server_port}} {{reason}}")), "ops"))
    L.add(timeseries("Open connections", "Connections established now (client side).", targets(
        ("sum by (client, server) (redmap_tcp_connections{%s})" % cs, "{{client}} → {{server}}"))))
    L.add(timeseries("Throughput", "Payload bytes per second, counted when connections close.",
                     targets(("sum by (client, server, side) (rate(redmap_tcp_sent_bytes_total{%s}[%s]))"
                              % (sel, RATE), "{{client}} → {{server}} ({{side}} sent)")), "Bps"),
          w=24)

    def worse(fam, s):
        return ("sort_desc(histogram_quantile(0.99, sum by (client, server, le) (rate(%s_bucket{%s}[%s]))) "
                "/ histogram_quantile(0.99, sum by (client, server, le) (rate(%s_bucket{%s}[%s]))))"
                % (fam, s, RATE, fam, s, RANGE))
    L.add(table("Edges that got worse", "Now (the last rate interval) against the whole time "
                "range: p99 connect latency and RTT as a ratio (> 1: worse now), retransmits "
                "and failed connects per second as a difference (> 0: more now).",
                instant(worse("redmap_tcp_connect_duration_seconds", cs),
                        worse("redmap_tcp_rtt_seconds", sel),
                        "sum by (client, server) (rate(redmap_tcp_retransmits_total{%s}[%s])) - "
                        "sum by (client, server) (rate(redmap_tcp_retransmits_total{%s}[%s]))"
                        % (sel, RATE, sel, RANGE),
                        "sum by (client, server) (rate(redmap_tcp_connect_failures_total{%s}[%s])) - "
                        "sum by (client, server) (rate(redmap_tcp_connect_failures_total{%s}[%s]))"
                        % (cs, RATE, cs, RANGE)),
                {"Value #A": "connect p99 now / range", "Value #B": "RTT p99 now / range",
                 "Value #C": "retransmits/s now - range", "Value #D": "failed connects/s now - range"},
                {"connect p99 now / range": "none", "RTT p99 now / range": "none"},
                "RTT p99 now / range"), w=24, h=10)
    # Every edge has a retransmits series (kind="data", even at 0).
    edges = 'redmap_tcp_retransmits_total{cluster=~"$cluster"%s}'
    variables = [
        CLUSTER,
        label_var("client_namespace", "client_service_namespace", edges % "", "Client namespace"),
        label_var("client", "client",
                  edges % ', client_service_namespace=~"$client_namespace"', "Client"),
        label_var("server_namespace", "server_service_namespace", edges % "", "Server namespace"),
        label_var("server", "server",
                  edges % ', server_service_namespace=~"$server_namespace"', "Server"),
    ]
    return dashboard("redmap-network", "redmap / Network",
                     "TCP health per edge from the kernel's TCP stack: is it the app or the network?",
                     variables, L, ["network"])


# ---- redmap health ----------------------------------------------------------------------
def health():
    sel = 'cluster=~"$cluster", instance=~"$instance"'
    R = "redmap_build_info{%s}" % sel  # restricts process_* to redmap's own processes
    L = Layout()
    L.add(timeseries("Events/s", "Socket and TCP events delivered to the pipeline, and records "
                     "the BPF programs wrote.", targets(
                         ("sum by (instance, type) (rate(redmap_events_received_total{%s}[%s]))"
                          % (sel, RATE), "{{instance}} {{type}}"),
                         ("sum by (instance) (rate(redmap_kernel_events_total{%s}[%s]))" % (sel, RATE),
                          "{{instance}} kernel records")), "ops"))
    L.add(timeseries("Dropped events/s", "Events lost, by reason (0 is the goal).", targets(
        ("sum by (instance, reason) (rate(redmap_events_dropped_total{%s}[%s]))" % (sel, RATE),
         "{{instance}} {{reason}}")), "ops"))
    L.add(timeseries("Parse errors/s and spans/s", "Messages skipped as unparseable, and "
                     "request/response pairs produced, per protocol.", targets(
                         ("sum by (instance, protocol) (rate(redmap_parse_errors_total{%s}[%s]))"
                          % (sel, RATE), "{{instance}} {{protocol}} errors"),
                         ("sum by (instance, protocol) (rate(redmap_spans_total{%s}[%s]))"
                          % (sel, RATE), "{{instance}} {{protocol}} spans")), "ops"))
    L.add(timeseries("Tracked connections", "Userspace connection tables and their bounds.",
                     targets(("sum by (instance) (redmap_tracked_connections{%s})" % sel,
                              "{{instance}} parser"),
                             ("sum by (instance) (redmap_tracked_connections_limit{%s})" % sel,
                              "{{instance}} parser limit"),
                             ("sum by (instance) (redmap_tcp_connections_tracked{%s})" % sel,
                              "{{instance}} TCP"))))
    L.add(timeseries("Series per family vs cap", "Live series over their cap (1 = full: new "
                     "series go to __overflow__).", targets(
                         ("redmap_series{%s} / redmap_series_limit{%s}" % (sel, sel),
                          "{{instance}} {{family}}"),
                         ("redmap_tcp_edges{%s} / redmap_tcp_edges_limit{%s}" % (sel, sel),
                          "{{instance}} redmap_tcp edges"),
                         ("redmap_service_graph_edges{%s} / redmap_service_graph_edges_limit{%s}"
                          % (sel, sel), "{{instance}} service graph edges")), "percentunit", max_=1))
    L.add(timeseries("Kernel tables fill", "Kernel connection tables and ring buffer bytes over "
                     "their capacity.", targets(
                         ("redmap_table_entries{%s} / redmap_table_capacity{%s}" % (sel, sel),
                          "{{instance}} {{table}}")), "percentunit", max_=1))
    L.add(timeseries("Overflowed observations/s", "Observations that went to __overflow__ "
                     "series.", targets(
                         ("sum by (instance, family) (rate(redmap_series_overflow_total{%s}[%s]))"
                          % (sel, RATE), "{{instance}} {{family}}"),
                         ("sum by (instance) (rate(redmap_tcp_edges_overflow_total{%s}[%s]))"
                          % (sel, RATE), "{{instance}} redmap_tcp"),
                         ("sum by (instance) (rate(redmap_service_graph_edges_overflow_total{%s}[%s]))"
                          % (sel, RATE), "{{instance}} service graph")), "ops"))
    L.add(table("Probe status", "1: attached; 0: failed to load or attach (the log says why).",
                instant("redmap_probe_up{%s}" % sel),
                {"Value": "up", "__name__": "metric", "job": "job"}, None, None))
    L.add(timeseries("Scrape duration", "Time redmap takes to collect /metrics, and the whole "
                     "scrape as Prometheus saw it.", targets(
                         ("rate(redmap_scrape_duration_seconds_sum{%s}[%s]) / "
                          "rate(redmap_scrape_duration_seconds_count{%s}[%s])" % (sel, RATE, sel, RATE),
                          "{{instance}} collect"),
                         ("scrape_duration_seconds * on (instance, job) group_left () %s" % R,
                          "{{instance}} scrape")), "s"))
    L.add(timeseries("CPU", "CPU of the exporter process (user + system). BPF programs run in "
                     "the traced processes and are not included.", targets(
                         ("rate(process_cpu_seconds_total[%s]) * on (instance, job) group_left () %s"
                          % (RATE, R), "{{instance}}")), "percentunit"))
    L.add(timeseries("Memory (RSS)", "Resident memory of the exporter process.", targets(
        ("process_resident_memory_bytes * on (instance, job) group_left () %s" % R,
         "{{instance}}")), "bytes"))
    L.add(timeseries("Trace ring fill", "Sampled traces kept, over the ring's bounds.", targets(
        ("redmap_trace_ring_bytes{%s} / redmap_trace_ring_bytes_limit{%s}" % (sel, sel),
         "{{instance}} bytes"),
        ("redmap_trace_ring_traces{%s} / redmap_trace_ring_traces_limit{%s}" % (sel, sel),
         "{{instance}} traces")), "percentunit", max_=1))
    L.add(timeseries("Trace assembly shedding", "Spans left out of trace assembly because "
                     "traces.max_spans_per_second was reached (metrics still count them), and "
                     "traces decided early because the assembly table was full.", targets(
                         ("rate(redmap_trace_spans_skipped_total{%s}[%s])" % (sel, RATE),
                          "{{instance}} spans skipped"),
                         ("rate(redmap_trace_pending_forced_total{%s}[%s])" % (sel, RATE),
                          "{{instance}} traces decided early")), "ops"))
    variables = [CLUSTER, label_var("instance", "instance",
                                    'redmap_build_info{cluster=~"$cluster"}', "Instance")]
    return dashboard("redmap-health", "redmap / redmap health",
                     "Is redmap itself healthy: events, losses, bounds, probes, cost.",
                     variables, L, ["health"])


DASHBOARDS = {
    "redmap-red.json": red_overview,
    "redmap-service-map.json": service_map,
    "redmap-network.json": network,
    "redmap-health.json": health,
}


def render(fn):
    return json.dumps(fn(), indent=2, ensure_ascii=False) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, fn in DASHBOARDS.items():
        path = os.path.join(HERE, name)
        text = render(fn)
        if check:
            try:
                with open(path) as f:
                    if f.read() != text:
                        stale.append(name)
            except OSError:
                stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if stale:
        sys.exit("dashboards/generate.py: stale %s; run python3 dashboards/generate.py"
                 % ", ".join(stale))


if __name__ == "__main__":
    main()
