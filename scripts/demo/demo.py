#!/usr/bin/env python3
"""redmap's local demo: redmap, a three-tier workload in network namespaces
(loadgen -> frontend -> api -> redis, plus the api's uploads to a lossy
storage sink), Prometheus with redmap's recording and alerting rules, and
Alertmanager; every listener on loopback, every process a real one from
Debian's packages. Run it through scripts/demo.sh (which installs and
builds first); the tests import it (tests/ops/).

  demo.py [--fast] [--free-ports] [--seconds N] [--build-dir DIR]

--fast shortens rate windows, rule intervals and "for" durations (seconds
instead of minutes) so that alerts fire within a minute; --free-ports picks
free ports instead of 9435/9090/9093; --seconds stops after N seconds
(default: until Ctrl-C). Needs root (BPF, network namespaces).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKLOAD = os.path.join(REPO, "scripts", "demo", "workload.py")

PREFIX = "10.217.0"  # the demo's bridge subnet; .1 is the host side
BRIDGE = "rmd0"
ROLES = {  # role -> host octet
    "frontend": 2, "api": 3, "redis": 4, "storage": 5, "loadgen": 6,
}
PORTS = {"frontend": 8080, "api": 8081, "redis": 6379, "storage": 9000, "legacy": 8099}


def ip(role):
    return "%s.%d" % (PREFIX, ROLES[role])


def netns(role):
    return "rmd-" + role


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s%s" % (cmd, r.returncode, r.stdout, r.stderr))
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Kubernetes identity labels as redmap sets them on a node, simulated: every
# workload in namespace "shop", deployment = service name, cluster "demo".
K8S_LABELS_JOB = """  - job_name: redmap-k8s-labels
    static_configs: [{targets: ["127.0.0.1:%d"], labels: {cluster: demo}}]
    metric_relabel_configs:
      - {source_labels: [service_name], regex: "(.+)", target_label: k8s_namespace_name, replacement: shop}
      - {source_labels: [service_name], regex: "(.+)", target_label: service_namespace, replacement: shop}
      - {source_labels: [service_name], regex: "(.+)", target_label: k8s_deployment_name, replacement: "$1"}
      - {source_labels: [server], regex: "(.+)", target_label: server_service_namespace, replacement: shop}
      - {source_labels: [client], regex: "(.+)", target_label: client_service_namespace, replacement: shop}
"""


def fast_rules(text):
    """The shipped rules with minutes turned into seconds, for tests and
    --fast: 5m windows become 20s, "for" durations 10s, group intervals 2s.
    Thresholds and expressions are otherwise the shipped ones."""
    text = re.sub(r"\[(5m|10m)\]", "[20s]", text)
    text = re.sub(r"^(\s*)for: \d+m$", r"\1for: 10s", text, flags=re.M)
    text = re.sub(r"^(\s*)interval: \w+$", r"\1interval: 2s", text, flags=re.M)
    return text


class Demo:
    def __init__(self, build_dir=None, workdir=None, fast=False, free_ports=False,
                 webhook_url=None, rps=8, k8s_labels_job=False):
        self.build_dir = os.path.abspath(build_dir or os.path.join(REPO, "build"))
        self.exporter = os.path.join(self.build_dir, "redmap_exporter")
        self.workdir = workdir or tempfile.mkdtemp(prefix="redmap-demo-")
        self.fast = fast
        self.webhook_url = webhook_url
        self.rps = rps
        # Tests: a second scrape job of the same redmap whose series carry the
        # labels a Kubernetes node adds (cluster, k8s_namespace_name,
        # k8s_deployment_name, service_namespace, ...), made up by relabeling.
        self.k8s_labels_job = k8s_labels_job
        pick = free_port if free_ports else (lambda: None)
        self.ports = {
            "redmap": pick() or 9435, "redmap_debug": pick() or 9436,
            "prometheus": pick() or 9090, "alertmanager": pick() or 9093,
        }
        self.procs = []  # (name, Popen), started in order
        self.delay_file = os.path.join(self.workdir, "api-delay")

    # ---- URLs ------------------------------------------------------------
    def url(self, what):
        return "http://127.0.0.1:%d" % self.ports[what]

    # ---- lifecycle --------------------------------------------------------
    def start(self):
        for tool in ("prometheus", "prometheus-alertmanager", "redis-server", "nft", "ip"):
            if shutil.which(tool) is None:
                raise RuntimeError("%s not found: run scripts/install-deps.sh" % tool)
        if not os.access(self.exporter, os.X_OK):
            raise RuntimeError("%s not built: run scripts/build.sh" % self.exporter)
        self.cleanup_network()
        try:
            self._network()
            self._redmap()
            self._workload()
            self._prometheus()
            self._alertmanager()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []
        self.cleanup_network()

    @staticmethod
    def cleanup_network():
        for role in ROLES:
            # Processes left in a namespace from a crashed run go first.
            pids = sh("ip netns pids %s 2>/dev/null" % netns(role), check=False).split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            # The host end first: deleting a veth deletes its pair at once,
            # while a deleted namespace's links go with it later, from a
            # kernel work queue (a quick next run found rmdh-api still there).
            sh("ip link del rmdh-%s 2>/dev/null" % role, check=False)
            sh("ip netns del %s 2>/dev/null" % netns(role), check=False)
        sh("ip link del %s 2>/dev/null" % BRIDGE, check=False)
        names = ["rmdh-" + role for role in ROLES] + [BRIDGE]
        deadline = time.time() + 10
        while time.time() < deadline and any(
                sh("ip link show %s 2>/dev/null" % n, check=False) for n in names):
            time.sleep(0.1)

    # ---- pieces -----------------------------------------------------------
    def _spawn(self, name, argv, ns=None, env=None, ready=None, timeout=30):
        log = open(os.path.join(self.workdir, name + ".log"), "w")
        if ns:
            argv = ["ip", "netns", "exec", ns] + argv
        full_env = dict(os.environ, **(env or {}))
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                             start_new_session=True, cwd=self.workdir)
        self.procs.append((name, p))
        if ready:
            deadline = time.time() + timeout
            while not ready():
                if p.poll() is not None:
                    raise RuntimeError("%s exited %d:\n%s" % (name, p.returncode, self.log(name)))
                if time.time() > deadline:
                    raise RuntimeError("%s not ready after %ds:\n%s" % (name, timeout, self.log(name)))
                time.sleep(0.2)
        return p

    def log(self, name):
        try:
            with open(os.path.join(self.workdir, name + ".log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def _network(self):
        sh("ip link add %s type bridge && ip addr add %s.1/24 dev %s && ip link set %s up"
           % (BRIDGE, PREFIX, BRIDGE, BRIDGE))
        for role, octet in ROLES.items():
            ns, host = netns(role), "rmdh-" + role
            sh("ip netns add %s" % ns)
            sh("ip link add %s type veth peer name eth0 netns %s" % (host, ns))
            sh("ip link set %s master %s up" % (host, BRIDGE))
            sh("ip -n %s addr add %s.%d/24 dev eth0 && ip -n %s link set eth0 up && "
               "ip -n %s link set lo up" % (ns, PREFIX, octet, ns, ns))
        # The storage host loses 3% of the data arriving for it (not SYNs):
        # real loss as the api sees it, so it retransmits.
        rules = os.path.join(self.workdir, "storage-loss.nft")
        with open(rules, "w") as f:
            f.write("table inet rmdloss {\n  chain in {\n"
                    "    type filter hook input priority 0;\n"
                    "    tcp dport %d tcp flags & syn == 0 numgen random mod 100 < 3 drop\n"
                    "  }\n}\n" % PORTS["storage"])
        sh("ip netns exec %s nft -f %s" % (netns("storage"), rules))

    def _http_ok(self, url):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def _listening(self, role, port):
        return ":%d " % port in sh("ip netns exec %s ss -ltnH" % netns(role), check=False)

    def _redmap(self):
        self._spawn("redmap", [
            self.exporter, "--config.file=" + os.path.join(REPO, "config", "redmap.yaml"),
            "--web.listen-address=127.0.0.1:%d" % self.ports["redmap"],
            "--debug.listen-address=127.0.0.1:%d" % self.ports["redmap_debug"],
        ], ready=lambda: "redmap_probe_up" in self._get(self.url("redmap") + "/metrics"),
            timeout=60)

    def _workload(self):
        with open(self.delay_file, "w") as f:
            f.write("0\n")
        py = [sys.executable or "python3", WORKLOAD]
        addr = lambda role: "%s:%d" % (ip(role), PORTS[role])
        self._spawn("redis", ["redis-server", "--bind", ip("redis"), "--port",
                              str(PORTS["redis"]), "--save", "", "--appendonly", "no",
                              "--protected-mode", "no"],
                    ns=netns("redis"), env={"OTEL_SERVICE_NAME": "redis"},
                    ready=lambda: self._listening("redis", PORTS["redis"]))
        self._spawn("storage", py + ["storage", addr("storage")], ns=netns("storage"),
                    env={"OTEL_SERVICE_NAME": "storage"},
                    ready=lambda: self._listening("storage", PORTS["storage"]))
        self._spawn("api", py + ["api", addr("api"), addr("redis"), addr("storage"),
                                 self.delay_file],
                    ns=netns("api"), env={"OTEL_SERVICE_NAME": "api"},
                    ready=lambda: self._listening("api", PORTS["api"]))
        self._spawn("frontend", py + ["frontend", addr("frontend"), addr("api"),
                                      "%s:%d" % (ip("api"), PORTS["legacy"])],
                    ns=netns("frontend"), env={"OTEL_SERVICE_NAME": "frontend"},
                    ready=lambda: self._listening("frontend", PORTS["frontend"]))
        self._spawn("loadgen", py + ["loadgen", addr("frontend"), str(self.rps)],
                    ns=netns("loadgen"), env={"OTEL_SERVICE_NAME": "loadgen"})

    def _prometheus(self):
        rules_dir = os.path.join(self.workdir, "rules")
        os.makedirs(rules_dir, exist_ok=True)
        for name in ("recording.rules.yml", "thresholds.rules.yml", "alerts.rules.yml"):
            with open(os.path.join(REPO, "alerts", name)) as f:
                text = f.read()
            with open(os.path.join(rules_dir, name), "w") as f:
                f.write(fast_rules(text) if self.fast else text)
        interval = "2s" if self.fast else "15s"
        config = os.path.join(self.workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("""global:
  scrape_interval: %(i)s
  evaluation_interval: %(i)s
rule_files: ["%(rules)s/*.yml"]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["127.0.0.1:%(am)d"]}]
scrape_configs:
  - job_name: redmap
    static_configs: [{targets: ["127.0.0.1:%(redmap)d"]}]
""" % {"i": interval, "rules": rules_dir, "am": self.ports["alertmanager"],
       "redmap": self.ports["redmap"]})
            if self.k8s_labels_job:
                f.write(K8S_LABELS_JOB % self.ports["redmap"])
        self._spawn("prometheus", [
            "prometheus", "--config.file=" + config,
            "--storage.tsdb.path=" + os.path.join(self.workdir, "tsdb"),
            "--web.listen-address=127.0.0.1:%d" % self.ports["prometheus"],
        ], ready=lambda: self._http_ok(self.url("prometheus") + "/-/ready"), timeout=60)

    def _alertmanager(self):
        wait, interval = ("1s", "5s") if self.fast else ("30s", "5m")
        receiver = ("    webhook_configs: [{url: \"%s\", send_resolved: true}]\n"
                    % self.webhook_url) if self.webhook_url else ""
        config = os.path.join(self.workdir, "alertmanager.yml")
        with open(config, "w") as f:
            f.write("""route:
  receiver: demo
  group_by: [alertname, service_name]
  group_wait: %s
  group_interval: %s
  repeat_interval: 1h
receivers:
  - name: demo
%s""" % (wait, interval, receiver))
        self._spawn("alertmanager", [
            "prometheus-alertmanager", "--config.file=" + config,
            "--storage.path=" + os.path.join(self.workdir, "alertmanager"),
            "--web.listen-address=127.0.0.1:%d" % self.ports["alertmanager"],
            "--cluster.listen-address=",
        ], ready=lambda: self._http_ok(self.url("alertmanager") + "/-/ready"), timeout=60)

    # ---- control and queries ----------------------------------------------
    def set_api_delay(self, seconds):
        with open(self.delay_file, "w") as f:
            f.write("%g\n" % seconds)

    def _get(self, url):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return ""

    def query(self, expr):
        """Instant query; returns Prometheus' JSON answer (status, data)."""
        url = self.url("prometheus") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def wait_for_data(self, exprs, timeout):
        """Waits until every expression returns at least one sample."""
        deadline = time.time() + timeout
        missing = list(exprs)
        while missing and time.time() < deadline:
            missing = [e for e in missing if not self.query(e).get("data", {}).get("result")]
            if missing:
                time.sleep(2)
        return missing

    def urls(self):
        p99 = ('histogram_quantile(0.99, sum by (service_name, le) '
               '(rate(http_server_request_duration_seconds_bucket[1m])))')
        return {
            "redmap metrics": self.url("redmap") + "/metrics",
            "redmap traces": self.url("redmap_debug") + "/",
            "Prometheus": self.url("prometheus"),
            "p99 per service": self.url("prometheus") + "/graph?" + urllib.parse.urlencode(
                {"g0.expr": p99, "g0.tab": "0", "g0.range_input": "15m"}),
            "Prometheus alerts": self.url("prometheus") + "/alerts",
            "Alertmanager": self.url("alertmanager"),
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--free-ports", action="store_true")
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--rps", type=float, default=8)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("demo: redmap loads BPF programs and the workload needs network namespaces: "
                 "run as root")
    demo = Demo(build_dir=args.build_dir, fast=args.fast, free_ports=args.free_ports,
                rps=args.rps)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *a: stop.update(now=True))
    demo.start()
    try:
        print("redmap demo is up (logs and data in %s):" % demo.workdir)
        for name, url in demo.urls().items():
            print("  %-18s %s" % (name, url))
        print("Make the api slow (the p99 alert fires after %s):" %
              ("~1 minute" if args.fast else "~10 minutes"))
        print("  echo 0.8 > %s" % demo.delay_file)
        print("Ctrl-C stops everything.", flush=True)
        deadline = time.time() + args.seconds if args.seconds else float("inf")
        while not stop["now"] and time.time() < deadline:
            for name, p in demo.procs:
                if p.poll() is not None:
                    print("demo: %s exited (%d):\n%s" % (name, p.returncode, demo.log(name)),
                          file=sys.stderr)
                    stop["now"] = True
            time.sleep(0.5)
    finally:
        demo.stop()
        print("demo: stopped", flush=True)


if __name__ == "__main__":
    main()
