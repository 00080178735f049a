#!/usr/bin/env python3
"""The demo as a user runs it: scripts/demo/demo.py comes up, prints its URLs,
Prometheus' graph page for the p99 query shows every service of the workload
(headless Chromium renders it; the screenshot is kept as
BUILD_DIR/tests/demo_p99.png), and Ctrl-C stops everything and removes the
network namespaces. Usage: demo_screenshot_test.py BUILD_DIR. Needs root.
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "demo"))
import report  # noqa: E402
DEMO = os.path.join(REPO, "scripts", "demo", "demo.py")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--window-size=1400,1000", "--virtual-time-budget=8000"]


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)["data"]["result"]


def main():
    build_dir = os.path.abspath(sys.argv[1])
    failures = []
    proc = subprocess.Popen([sys.executable, DEMO, "--fast", "--free-ports", "--seconds", "300",
                             "--build-dir", build_dir], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    urls, out, profile = {}, [], None
    try:
        deadline = time.time() + 120
        for line in proc.stdout:
            out.append(line)
            m = re.match(r"\s+(.+?)\s{2,}(http://\S+)", line)
            if m:
                urls[m.group(1)] = m.group(2)
            if "Ctrl-C stops everything" in line or time.time() > deadline:
                break
        print("".join(out))
        expected = {"redmap metrics", "redmap traces", "Prometheus", "p99 per service",
                    "Prometheus alerts", "Alertmanager"}
        if set(urls) != expected:
            raise AssertionError("the demo printed %s, expected %s" % (sorted(urls), sorted(expected)))
        for name in ("redmap metrics", "Prometheus", "Alertmanager"):
            with urllib.request.urlopen(urls[name], timeout=10) as r:
                if r.status != 200:
                    failures.append("%s (%s) answered %d" % (name, urls[name], r.status))

        # Wait for a minute of p99 data for the three HTTP tiers.
        p99 = urllib.parse.parse_qs(urllib.parse.urlparse(urls["p99 per service"]).query)["g0.expr"][0]
        services = set()
        for _ in range(60):
            services = {r["metric"].get("service_name") for r in query(urls["Prometheus"], p99)}
            if {"frontend", "api"} <= services:
                break
            time.sleep(2)
        time.sleep(20)  # a few more points on the graph
        if not {"frontend", "api"} <= services:
            failures.append("p99 query returned services %s" % services)

        # The demo's link shows 15 minutes; the test has run for about one.
        page = urls["p99 per service"].replace("g0.range_input=15m", "g0.range_input=1m")
        profile = tempfile.mkdtemp(prefix="redmap-chromium-")
        flags = FLAGS + ["--user-data-dir=" + profile]
        dom = subprocess.run(["chromium"] + flags + ["--dump-dom", page],
                             capture_output=True, text=True, timeout=120)
        for svc in ("frontend", "api"):
            if 'service_name="%s"' % svc not in dom.stdout:
                failures.append("the graph page's legend lacks service_name=%s" % svc)
        shot = os.path.join(build_dir, "tests", "demo_p99.png")
        os.makedirs(os.path.dirname(shot), exist_ok=True)
        if os.path.exists(shot):
            os.unlink(shot)
        subprocess.run(["chromium"] + flags + ["--screenshot=" + shot, page],
                       capture_output=True, text=True, timeout=120)
        try:
            with open(shot, "rb") as f:
                png = f.read()
            width, height = struct.unpack(">II", png[16:24])
            print("screenshot: %s (%dx%d, %d bytes)" % (shot, width, height, len(png)))
            if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 20000 or (width, height) != (1400, 1000):
                failures.append("screenshot is not a full 1400x1000 page (%d bytes)" % len(png))
        except OSError as e:
            failures.append("no screenshot: %s" % e)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
            print(rest)
        except subprocess.TimeoutExpired:
            proc.kill()
            failures.append("the demo did not stop within 60 s of Ctrl-C")
    if proc.returncode != 0:
        failures.append("the demo exited %d" % proc.returncode)
    if not failures:
        if profile:
            shutil.rmtree(profile, ignore_errors=True)
        for line in out:
            m = re.search(r"logs and data in (/tmp/redmap-demo-\w+)", line)
            if m:
                shutil.rmtree(m.group(1), ignore_errors=True)
    left = subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
    if "rmd-" in left:
        failures.append("network namespaces left behind: %s" % left)
    report.finish(failures)


if __name__ == "__main__":
    main()
