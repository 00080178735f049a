#!/usr/bin/env python3
"""The capability set the deployment grants is the one redmap needs.

The DaemonSet (deploy/kubernetes/daemonset.yaml) and the systemd unit
(deploy/systemd/redmap.service) must list the same capabilities; redmap runs
with exactly those (setpriv: bounding set reduced, as the container runtime
and systemd do) and then attaches every probe and names a service run by
another user from its OTEL_SERVICE_NAME (which needs the /proc access the set
grants). Without CAP_BPF it must fail to start (the set is not bigger than
the test can tell). The unit passes systemd-analyze verify.
Usage: capabilities_test.py BUILD_DIR. Needs root.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "demo"))
import report  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def run_exporter(exporter, caps, port):
    bounding = "-all," + ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
    return subprocess.Popen(
        ["setpriv", "--bounding-set=" + bounding, "--inh-caps=-all", exporter,
         "--web.listen-address=127.0.0.1:%d" % port,
         "--debug.listen-address=127.0.0.1:%d" % free_port()],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main():
    build_dir = os.path.abspath(sys.argv[1])
    exporter = os.path.join(build_dir, "redmap_exporter")
    failures = []

    with open(os.path.join(REPO, "deploy", "kubernetes", "daemonset.yaml")) as f:
        m = re.search(r"add: \[([A-Z_, ]+)\]", f.read())
    k8s = {"CAP_" + c.strip() for c in m.group(1).split(",")}
    with open(os.path.join(REPO, "deploy", "systemd", "redmap.service")) as f:
        unit = f.read()
    bounding = set(re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split())
    ambient = set(re.search(r"^AmbientCapabilities=(.*)$", unit, re.M).group(1).split())
    print("DaemonSet: %s\nsystemd:   %s" % (sorted(k8s), sorted(bounding)))
    if not (k8s == bounding == ambient):
        failures.append("capability sets differ: DaemonSet %s, unit bounding %s, ambient %s"
                        % (sorted(k8s), sorted(bounding), sorted(ambient)))

    # The unit file is valid (ExecStart pointed at the build).
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "redmap.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/local/bin/redmap_exporter", exporter))
        v = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
        complaints = [l for l in (v.stdout + v.stderr).splitlines() if "redmap.service" in l]
        if v.returncode != 0 or complaints:
            failures.append("systemd-analyze verify: %s" % (v.stdout + v.stderr))

    # With exactly the set: every probe attached, another user's service named.
    # (/usr/bin/python3: uid 65534 may not reach an interpreter under /root.)
    port, srv_port = free_port(), free_port()
    p = run_exporter(exporter, k8s, port)
    server = None
    try:
        deadline = time.time() + 60
        metrics = ""
        while "redmap_probe_up" not in metrics and time.time() < deadline and p.poll() is None:
            time.sleep(0.5)
            metrics = get("http://127.0.0.1:%d/metrics" % port)
        server = subprocess.Popen(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env",
             "OTEL_SERVICE_NAME=capcheck", "/usr/bin/python3", "-m", "http.server", str(srv_port),
             "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/")
        for _ in range(50):
            if get("http://127.0.0.1:%d/" % srv_port):
                break
            time.sleep(0.2)
        for _ in range(5):
            get("http://127.0.0.1:%d/" % srv_port)
        want = re.compile(r'^http_server_request_duration_seconds_count\{service_name="capcheck".*'
                          r'http_route="/"\} (\d+)$', re.M)
        count = 0
        for _ in range(40):
            metrics = get("http://127.0.0.1:%d/metrics" % port)
            count = sum(int(n) for n in want.findall(metrics))
            if count >= 6:
                break
            time.sleep(0.25)
        probes = re.findall(r"^redmap_probe_up\{probe=\"(\w+)\"\} (\d)$", metrics, re.M)
        print("probes: %s; requests seen for capcheck: %d" % (probes, count))
        if not probes or any(up != "1" for _, up in probes):
            failures.append("not every probe attached with %s: %s" % (sorted(k8s), probes))
        if count != 6:  # the readiness request + 5
            failures.append("service named from OTEL_SERVICE_NAME of uid 65534: %d requests, "
                            "want 6" % count)
    finally:
        if server:
            server.terminate()
            server.wait()
        p.terminate()
        out, _ = p.communicate(timeout=30)
    # One fewer: without CAP_BPF nothing loads and the exporter says why.
    q = run_exporter(exporter, k8s - {"CAP_BPF"}, free_port())
    try:
        out, _ = q.communicate(timeout=60)
        if q.returncode == 0:
            failures.append("the exporter started without CAP_BPF")
        else:
            print("without CAP_BPF: exit %d, %s" % (q.returncode, out.strip().splitlines()[-1]))
    except subprocess.TimeoutExpired:
        q.kill()
        failures.append("the exporter kept running without CAP_BPF")
    report.finish(failures)


if __name__ == "__main__":
    main()
