#!/usr/bin/env python3
"""End to end: the api's backend becomes slow, redmap measures it, Prometheus
evaluates the shipped p99 alert, Alertmanager delivers it to a webhook this
test runs on loopback; when the api recovers, the resolution is delivered too.

Real processes throughout (scripts/demo/demo.py: redmap, the workload in
network namespaces, Debian's prometheus and prometheus-alertmanager). The
rules are the shipped files with minutes turned into seconds (5m windows ->
20s, "for" -> 10s; demo.fast_rules) so that this takes about a minute.
Usage: alert_e2e_test.py BUILD_DIR. Needs root.
"""
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "demo"))
import demo  # noqa: E402
import report  # noqa: E402

ALERT = "RedmapServiceLatencyP99High"


class Webhook:
    def __init__(self):
        self.payloads = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    outer.payloads.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/alerts" % self.server.server_address[1]

    def find(self, status, service):
        """(arrival time, alert) of the first delivered alert matching."""
        with self.lock:
            for t, p in self.payloads:
                for a in p.get("alerts", []):
                    if (a["labels"].get("alertname") == ALERT and a["status"] == status
                            and a["labels"].get("service_name") == service):
                        return t, a
        return None

    def wait(self, status, service, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            hit = self.find(status, service)
            if hit:
                return hit
            time.sleep(0.5)
        return None


def main():
    failures = []
    hook = Webhook()
    d = demo.Demo(build_dir=sys.argv[1], workdir=tempfile.mkdtemp(prefix="redmap-alert-"),
                  fast=True, free_ports=True, webhook_url=hook.url, rps=10)
    d.start()
    try:
        # Healthy first: the p99 of the api is recorded and under the 0.5 s
        # default threshold, and nothing fires for it.
        p99 = 'service:http_server_request_duration_seconds:p99_5m{service_name="api"}'
        if d.wait_for_data([p99], 60):
            failures.append("no recorded p99 for the api after 60 s")
        time.sleep(15)  # longer than "for": a false alarm would show now
        healthy = float(d.query(p99)["data"]["result"][0]["value"][1])
        print("healthy api p99: %.4f s" % healthy)
        if not healthy < 0.5:
            failures.append("healthy api p99 %.3f s is not under the threshold" % healthy)
        if hook.find("firing", "api"):
            failures.append("the alert fired while the api was healthy")

        # The backend becomes slow: every api request takes 0.8 s more.
        d.set_api_delay(0.8)
        slow_at = time.time()
        hit = hook.wait("firing", "api", 150)
        if not hit:
            alerts = d.query('ALERTS{alertname="%s"}' % ALERT)["data"]["result"]
            failures.append("no firing %s for the api delivered within 150 s; ALERTS: %s; "
                            "alertmanager log:\n%s" % (ALERT, alerts, d.log("alertmanager")))
        else:
            t, alert = hit
            print("fired and delivered %.1f s after the api became slow" % (t - slow_at))
            print(json.dumps(alert, indent=2))
            labels, ann = alert["labels"], alert["annotations"]
            if labels.get("severity") != "warning":
                failures.append("severity %s" % labels.get("severity"))
            if "p99 latency of api is" not in ann.get("summary", ""):
                failures.append("summary %r" % ann.get("summary"))
            if ann.get("runbook_url") != "docs/alerts.md#redmapservicelatencyp99high":
                failures.append("runbook_url %r" % ann.get("runbook_url"))
            for other in ("loadgen", "redis"):
                if hook.find("firing", other):
                    failures.append("the alert fired for %s, which did not slow down" % other)

            # Recovery: the resolution is delivered too.
            d.set_api_delay(0)
            fixed_at = time.time()
            resolved = hook.wait("resolved", "api", 120)
            if not resolved:
                failures.append("no resolved notification for the api within 120 s")
            else:
                print("resolved and delivered %.1f s after the api recovered"
                      % (resolved[0] - fixed_at))
    finally:
        d.stop()
        hook.server.shutdown()
    if not failures:
        shutil.rmtree(d.workdir, ignore_errors=True)
    report.finish(failures)


if __name__ == "__main__":
    main()
