#!/usr/bin/env python3
"""The ClusterRole grants exactly what redmap's Kubernetes client reads.

Every resource the client lists and watches (kSpecs in
aggregators/metadata/k8s/k8s_client.cc) must be granted get/list/watch in
deploy/kubernetes/clusterrole.yaml, and nothing else may be granted: a
missing grant leaves identities empty in a real cluster, an extra one is
more privilege than the agent uses.
Usage: rbac_test.py
"""
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "demo"))
import report  # noqa: E402


def client_resources():
    src = open(os.path.join(REPO, "aggregators/metadata/k8s/k8s_client.cc")).read()
    specs = re.search(r"kSpecs\[\]\s*=\s*\{(.*?)\n\};", src, re.S).group(1)
    out = set()
    for path in re.findall(r'"(/apis?/[^"]+)"', specs):
        parts = path.strip("/").split("/")
        # /api/v1/<res> is the core group; /apis/<group>/<version>/<res>
        group = "" if parts[0] == "api" else parts[1]
        out.add((group, parts[-1]))
    return out


def granted():
    text = open(os.path.join(REPO, "deploy/kubernetes/clusterrole.yaml")).read()
    out, verbs = set(), []
    for rule in re.split(r"\n  - ", text.split("rules:", 1)[1]):
        groups = re.search(r"apiGroups:\s*\[(.*?)\]", rule)
        res = re.search(r"resources:\s*\[(.*?)\]", rule)
        vb = re.search(r"verbs:\s*\[(.*?)\]", rule)
        if not (groups and res and vb):
            continue
        for g in groups.group(1).split(","):
            for r in res.group(1).split(","):
                out.add((g.strip().strip('"'), r.strip()))
        verbs.append(sorted(v.strip() for v in vb.group(1).split(",")))
    return out, verbs


failures = []
need = client_resources()
have, verbs = granted()
if len(need) < 5:
    failures.append("found only %d resources in the client's kSpecs: %s" % (len(need), sorted(need)))
for g, r in sorted(need - have):
    failures.append("client reads %s (group %r) but the ClusterRole does not grant it" % (r, g))
for g, r in sorted(have - need):
    failures.append("ClusterRole grants %s (group %r) which the client never reads" % (r, g))
for v in verbs:
    if v != ["get", "list", "watch"]:
        failures.append("verbs %s: only get, list, watch" % v)
report.finish(failures)
