// Kubernetes object parsing (fixtures under tests/fixtures/k8s/ follow the
// API reference's shapes: core/v1 Pod and Service, discovery.k8s.io/v1
// EndpointSlice, a ReplicaSet as PartialObjectMetadata), selector matching,
// owner walking and the Store's indexes.
#include "aggregators/metadata/k8s/k8s_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "tests/testlib/fixtures.h"

namespace redmap::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

nlohmann::json Load(const std::string& name) {
  return nlohmann::json::parse(redmap::testing::Fixture("k8s/" + name));
}

IpAddress Ip(const char* s) { return ParseIp(s); }

TEST(K8sObjectsTest, ParsesPod) {
  auto p = ParsePod(Load("pod_frontend.json"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->meta.name, "frontend-7d4b9c6f8-x2x9q");
  EXPECT_EQ(p->meta.namespace_, "shop");
  EXPECT_EQ(p->meta.uid, "6a1d3b8e-2f4c-4e9a-b7d5-0c8e1f2a3b4c");
  EXPECT_EQ(p->meta.resource_version, "48213");
  EXPECT_FALSE(p->meta.deleting);
  EXPECT_THAT(p->meta.labels,
              ElementsAre(std::pair<std::string, std::string>{"app.kubernetes.io/name", "frontend"},
                          std::pair<std::string, std::string>{"app.kubernetes.io/part-of", "shop"},
                          std::pair<std::string, std::string>{"pod-template-hash", "7d4b9c6f8"}));
  ASSERT_NE(p->meta.ControllerOwner(), nullptr);
  EXPECT_EQ(p->meta.ControllerOwner()->kind, "ReplicaSet");
  EXPECT_EQ(p->meta.ControllerOwner()->name, "frontend-7d4b9c6f8");
  EXPECT_EQ(p->node_name, "node-a");
  EXPECT_FALSE(p->host_network);
  EXPECT_EQ(p->phase, "Running");
  ASSERT_EQ(p->ips.size(), 2u);  // podIP is podIPs[0]: not listed twice
  EXPECT_EQ(p->ips[0].ToString(), "10.244.1.17");
  EXPECT_EQ(p->ips[1].ToString(), "fd00:10:244:1::11");
  EXPECT_EQ(p->host_ip.ToString(), "192.168.10.11");
}

TEST(K8sObjectsTest, ParsesServiceSliceAndOwner) {
  auto s = ParseService(Load("service_frontend.json"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->meta.name, "frontend");
  EXPECT_EQ(s->type, "ClusterIP");
  ASSERT_EQ(s->cluster_ips.size(), 2u);
  EXPECT_EQ(s->cluster_ips[0].ToString(), "10.96.120.5");
  EXPECT_EQ(s->selector.size(), 1u);

  auto e = ParseEndpointSlice(Load("endpointslice_frontend.json"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->service_name, "frontend");
  ASSERT_EQ(e->addresses.size(), 1u);
  EXPECT_EQ(e->addresses[0].ToString(), "10.244.1.17");

  auto rs = ParseOwnerObject(Load("replicaset_frontend_metadata.json"));
  ASSERT_TRUE(rs.ok());
  ASSERT_NE(rs->meta.ControllerOwner(), nullptr);
  EXPECT_EQ(rs->meta.ControllerOwner()->kind, "Deployment");
  EXPECT_THAT(rs->meta.labels, IsEmpty());  // not needed, not kept
}

TEST(K8sObjectsTest, ToleratesOddObjects) {
  using nlohmann::json;
  EXPECT_FALSE(ParsePod(json::object()).ok());
  EXPECT_FALSE(ParsePod(json::array()).ok());
  EXPECT_FALSE(ParsePod(json("x")).ok());
  // Wrong types everywhere: read as empty, never throw.
  auto p = ParsePod(json::parse(R"({"metadata":{"name":"p","labels":[1],"ownerReferences":{"a":1},
      "deletionTimestamp":"2024-01-01T00:00:00Z"},"spec":{"hostNetwork":"yes","nodeName":5},
      "status":{"podIPs":[{"ip":"not-an-ip"},{"ip":7},"x"],"podIP":"10.0.0.1"}})"));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->meta.deleting);
  EXPECT_FALSE(p->host_network);
  EXPECT_EQ(p->node_name, "");
  ASSERT_EQ(p->ips.size(), 1u);
  EXPECT_EQ(p->ips[0].ToString(), "10.0.0.1");
  // Headless Service: clusterIP "None" is not an address.
  auto s = ParseService(json::parse(
      R"({"metadata":{"name":"db","namespace":"x"},"spec":{"clusterIP":"None","clusterIPs":["None"]}})"));
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->cluster_ips, IsEmpty());
}

TEST(K8sObjectsTest, SelectorMatching) {
  Labels labels = {{"app", "web"}, {"tier", "front"}, {"version", "v2"}};
  EXPECT_TRUE(SelectorMatches({{"app", "web"}}, labels));
  EXPECT_TRUE(SelectorMatches({{"app", "web"}, {"version", "v2"}}, labels));
  EXPECT_FALSE(SelectorMatches({{"app", "web"}, {"version", "v1"}}, labels));
  EXPECT_FALSE(SelectorMatches({{"app", "web"}, {"zone", "a"}}, labels));
  EXPECT_FALSE(SelectorMatches({{"a", "web"}}, labels));
  EXPECT_FALSE(SelectorMatches({}, labels));  // no selector selects nothing
  EXPECT_FALSE(SelectorMatches({{"app", "web"}}, {}));
}

TEST(K8sObjectsTest, ParseIp) {
  EXPECT_EQ(ParseIp("10.1.2.3").ToString(), "10.1.2.3");
  EXPECT_EQ(ParseIp("::ffff:10.1.2.3").family, 4);
  EXPECT_EQ(ParseIp("fd00::1").family, 6);
  EXPECT_EQ(ParseIp("None").family, 0);
  EXPECT_EQ(ParseIp("").family, 0);
  EXPECT_EQ(ParseIp("10.1.2.3/24").family, 0);
  EXPECT_EQ(ParseIp(std::string(100, '1')).family, 0);
}

// ---- store ---------------------------------------------------------------------

Pod MakePod(std::string ns, std::string name, std::string uid, std::string ip,
            std::vector<OwnerRef> owners = {}, Labels labels = {}, std::string node = "node-a") {
  Pod p;
  p.meta.namespace_ = std::move(ns);
  p.meta.name = std::move(name);
  p.meta.uid = std::move(uid);
  p.meta.owners = std::move(owners);
  std::sort(labels.begin(), labels.end());
  p.meta.labels = std::move(labels);
  p.node_name = std::move(node);
  p.phase = "Running";
  if (!ip.empty()) p.ips.push_back(ParseIp(ip));
  p.host_ip = ParseIp("192.168.10.11");
  return p;
}

Service MakeService(std::string ns, std::string name, Labels selector, std::string ip = "") {
  Service s;
  s.meta.namespace_ = std::move(ns);
  s.meta.name = std::move(name);
  s.selector = std::move(selector);
  if (!ip.empty()) s.cluster_ips.push_back(ParseIp(ip));
  return s;
}

OwnerObject MakeOwner(std::string ns, std::string name, std::string owner_kind,
                      std::string owner_name) {
  OwnerObject o;
  o.meta.namespace_ = std::move(ns);
  o.meta.name = std::move(name);
  if (!owner_kind.empty()) o.meta.owners.push_back({owner_kind, owner_name, "u", true});
  return o;
}

ObjectMeta Meta(std::string ns, std::string name) {
  ObjectMeta m;
  m.namespace_ = std::move(ns);
  m.name = std::move(name);
  return m;
}

OwnerRef Ctl(std::string kind, std::string name) { return {std::move(kind), std::move(name), "x", true}; }

struct OwnerCase {
  const char* name;
  std::vector<OwnerRef> owners;
  Labels labels;
  std::string want_kind;
  std::string want_name;
};

class OwnerWalkTest : public ::testing::TestWithParam<OwnerCase> {};

TEST_P(OwnerWalkTest, Walks) {
  Store store;
  store.ReplaceOwners(Kind::kReplicaSets,
                      {MakeOwner("ns", "api-5f7d8", "Deployment", "api"),
                       MakeOwner("ns", "bare-rs", "", ""),
                       MakeOwner("ns", "roll-6c9", "Rollout", "roll")});
  store.ReplaceOwners(Kind::kJobs, {MakeOwner("ns", "backup-28561230", "CronJob", "backup"),
                                    MakeOwner("ns", "migrate", "", "")});
  const OwnerCase& c = GetParam();
  store.UpsertPod(MakePod("ns", "p", "uid-1", "10.0.0.1", c.owners, c.labels));
  auto id = store.ByPodUid("uid-1");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->workload.kind, c.want_kind);
  EXPECT_EQ(id->workload.name, c.want_name);
}

INSTANTIATE_TEST_SUITE_P(
    Owners, OwnerWalkTest,
    ::testing::Values(
        OwnerCase{"deployment", {Ctl("ReplicaSet", "api-5f7d8")}, {}, "Deployment", "api"},
        OwnerCase{"bare_replicaset", {Ctl("ReplicaSet", "bare-rs")}, {}, "ReplicaSet", "bare-rs"},
        OwnerCase{"rollout", {Ctl("ReplicaSet", "roll-6c9")}, {}, "Rollout", "roll"},
        // ReplicaSet not (yet) known: the pod-template-hash names the Deployment.
        OwnerCase{"unknown_rs_with_hash",
                  {Ctl("ReplicaSet", "web-7d4b9c6f8")},
                  {{"pod-template-hash", "7d4b9c6f8"}},
                  "Deployment",
                  "web"},
        OwnerCase{"unknown_rs_hash_mismatch",
                  {Ctl("ReplicaSet", "web-7d4b9c6f8")},
                  {{"pod-template-hash", "abc"}},
                  "ReplicaSet",
                  "web-7d4b9c6f8"},
        OwnerCase{"cronjob", {Ctl("Job", "backup-28561230")}, {}, "CronJob", "backup"},
        OwnerCase{"plain_job", {Ctl("Job", "migrate")}, {}, "Job", "migrate"},
        OwnerCase{"unknown_job", {Ctl("Job", "other-1")}, {}, "Job", "other-1"},
        OwnerCase{"statefulset", {Ctl("StatefulSet", "db")}, {}, "StatefulSet", "db"},
        OwnerCase{"daemonset", {Ctl("DaemonSet", "agent")}, {}, "DaemonSet", "agent"},
        OwnerCase{"static_pod", {Ctl("Node", "node-a")}, {}, "Pod", "p"},
        OwnerCase{"no_owner", {}, {}, "Pod", "p"},
        // The controller reference wins over the first one.
        OwnerCase{"controller_first",
                  {{"ConfigMap", "cm", "u", false}, Ctl("StatefulSet", "db")},
                  {},
                  "StatefulSet",
                  "db"}),
    [](const ::testing::TestParamInfo<OwnerCase>& i) { return std::string(i.param.name); });

TEST(StoreTest, ServicesSelectingAPod) {
  Store store;
  store.ReplaceServices({MakeService("shop", "web", {{"app", "web"}}, "10.96.0.10"),
                         MakeService("shop", "all", {{"part-of", "shop"}}),
                         MakeService("shop", "other", {{"app", "db"}}),
                         MakeService("shop", "noselector", {}),
                         MakeService("elsewhere", "web", {{"app", "web"}})});
  store.UpsertPod(MakePod("shop", "web-1", "u1", "10.244.0.5", {Ctl("StatefulSet", "web")},
                          {{"app", "web"}, {"part-of", "shop"}}));
  auto id = store.ByPodUid("u1");
  ASSERT_TRUE(id.has_value());
  EXPECT_THAT(id->services, ElementsAre("all", "web"));  // sorted, same namespace only
  // ClusterIP -> the Service itself.
  auto svc = store.ByIp(Ip("10.96.0.10"));
  ASSERT_TRUE(svc.has_value());
  EXPECT_EQ(svc->source, ObjectIdentity::Source::kService);
  EXPECT_EQ(svc->namespace_, "shop");
  EXPECT_THAT(svc->services, ElementsAre("web"));
  // The Service goes away: the pod is selected by one fewer.
  store.DeleteService(Meta("shop", "all"));
  EXPECT_THAT(store.ByPodUid("u1")->services, ElementsAre("web"));
  store.DeleteService(Meta("shop", "web"));
  EXPECT_FALSE(store.ByIp(Ip("10.96.0.10")).has_value());
  EXPECT_EQ(store.counts().objects[static_cast<size_t>(Kind::kServices)], 3u);
}

TEST(StoreTest, IpIndex) {
  Store store;
  Pod host = MakePod("kube-system", "kube-proxy-abc", "uh", "192.168.10.11",
                     {Ctl("DaemonSet", "kube-proxy")});
  host.host_network = true;
  store.ReplacePods({MakePod("shop", "web-1", "u1", "10.244.0.5"), host});
  // Pod IP -> pod; the IPv4-mapped form is the same address.
  auto a = store.ByIp(Ip("::ffff:10.244.0.5"));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->source, ObjectIdentity::Source::kPod);
  EXPECT_EQ(a->pod, "web-1");
  EXPECT_EQ(a->node, "node-a");
  // A hostNetwork pod's IP is its node's: it names the node, not the pod.
  auto n = store.ByIp(Ip("192.168.10.11"));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->source, ObjectIdentity::Source::kNode);
  EXPECT_EQ(n->node, "node-a");
  EXPECT_EQ(n->pod, "");
  EXPECT_FALSE(store.ByIp(Ip("10.9.9.9")).has_value());

  // The IP is reused by a new pod before the old one's deletion arrives:
  // the new pod keeps it, and the late delete does not take it away.
  store.UpsertPod(MakePod("shop", "web-2", "u2", "10.244.0.5"));
  EXPECT_EQ(store.ByIp(Ip("10.244.0.5"))->pod, "web-2");
  store.DeletePod(Meta("shop", "web-1"));
  EXPECT_EQ(store.ByIp(Ip("10.244.0.5"))->pod, "web-2");
  EXPECT_FALSE(store.ByPodUid("u1").has_value());
  // A terminating pod updated after the new one does not steal it back.
  Pod old = MakePod("shop", "web-0", "u0", "10.244.0.5");
  old.meta.deleting = true;
  store.UpsertPod(old);
  EXPECT_EQ(store.ByIp(Ip("10.244.0.5"))->pod, "web-2");
  // A pod that finished no longer owns its IP.
  Pod done = MakePod("shop", "web-2", "u2", "10.244.0.5");
  done.phase = "Succeeded";
  store.UpsertPod(done);
  EXPECT_FALSE(store.ByIp(Ip("10.244.0.5")).has_value());
  EXPECT_TRUE(store.ByPodUid("u2").has_value());
  // Node IPs are reference counted by the pods reporting them.
  store.DeletePod(Meta("kube-system", "kube-proxy-abc"));
  EXPECT_TRUE(store.ByIp(Ip("192.168.10.11")).has_value());  // web-2, web-0 still there
  store.DeletePod(Meta("shop", "web-2"));
  store.DeletePod(Meta("shop", "web-0"));
  EXPECT_FALSE(store.ByIp(Ip("192.168.10.11")).has_value());
  StoreCounts c = store.counts();
  EXPECT_EQ(c.objects[static_cast<size_t>(Kind::kPods)], 0u);
  EXPECT_EQ(c.pod_ips, 0u);
  EXPECT_EQ(c.node_ips, 0u);
}

TEST(StoreTest, EndpointSlices) {
  Store store;
  EndpointSlice s;
  s.meta = Meta("shop", "legacy-x1");
  s.service_name = "legacy";
  s.addresses = {Ip("10.50.0.7"), Ip("10.244.0.9")};
  store.ReplaceEndpointSlices({s});
  // An address behind a selector-less Service.
  auto e = store.ByIp(Ip("10.50.0.7"));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->source, ObjectIdentity::Source::kService);
  EXPECT_THAT(e->services, ElementsAre("legacy"));
  // A pod no selector picks is still named by the slice it is in.
  store.UpsertPod(MakePod("shop", "legacy-0", "u9", "10.244.0.9"));
  EXPECT_THAT(store.ByPodUid("u9")->services, ElementsAre("legacy"));
  // The slice changes: the dropped address is no longer the Service's.
  s.addresses = {Ip("10.244.0.9")};
  store.UpsertEndpointSlice(s);
  EXPECT_FALSE(store.ByIp(Ip("10.50.0.7")).has_value());
  store.DeleteEndpointSlice(Meta("shop", "legacy-x1"));
  EXPECT_THAT(store.ByPodUid("u9")->services, IsEmpty());
}

TEST(StoreTest, ReplaceDropsWhatTheListNoLongerHas) {
  Store store;
  store.ReplacePods({MakePod("a", "p1", "u1", "10.0.0.1"), MakePod("a", "p2", "u2", "10.0.0.2")});
  uint64_t g = store.generation();
  store.ReplacePods({MakePod("a", "p2", "u2", "10.0.0.2")});
  EXPECT_GT(store.generation(), g);
  EXPECT_FALSE(store.ByPodUid("u1").has_value());
  EXPECT_FALSE(store.ByIp(Ip("10.0.0.1")).has_value());
  EXPECT_TRUE(store.ByIp(Ip("10.0.0.2")).has_value());
}

TEST(StoreTest, EveryTableIsBounded) {
  Store store(3);
  std::vector<Pod> pods;
  for (int i = 0; i < 5; ++i) {
    pods.push_back(MakePod("a", "p" + std::to_string(i), "u" + std::to_string(i),
                           "10.0.0." + std::to_string(i + 1)));
  }
  store.ReplacePods(pods);
  store.UpsertPod(MakePod("a", "p9", "u9", "10.0.0.99"));
  store.UpsertPod(MakePod("a", "p0", "u0", "10.0.0.50"));  // an update still applies
  for (int i = 0; i < 5; ++i) store.UpsertService(MakeService("a", "s" + std::to_string(i), {}));
  for (int i = 0; i < 5; ++i) {
    store.UpsertOwner(Kind::kJobs, MakeOwner("a", "j" + std::to_string(i), "", ""));
  }
  StoreCounts c = store.counts();
  EXPECT_EQ(c.objects[static_cast<size_t>(Kind::kPods)], 3u);
  EXPECT_EQ(c.dropped[static_cast<size_t>(Kind::kPods)], 3u);
  EXPECT_EQ(c.objects[static_cast<size_t>(Kind::kServices)], 3u);
  EXPECT_EQ(c.dropped[static_cast<size_t>(Kind::kServices)], 2u);
  EXPECT_EQ(c.objects[static_cast<size_t>(Kind::kJobs)], 3u);
  EXPECT_EQ(store.ByIp(Ip("10.0.0.50"))->pod, "p0");
  EXPECT_FALSE(store.ByIp(Ip("10.0.0.1")).has_value());
}

}  // namespace
}  // namespace redmap::k8s
