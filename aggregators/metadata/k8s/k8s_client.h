// A Kubernetes API client that keeps a Store in sync with the API server by
// list + watch, the way client-go's reflectors do, on one thread of its own:
//
//   list (paginated: limit/continue) -> Store::Replace, remember the list's
//   resourceVersion -> watch from it (allowWatchBookmarks, timeoutSeconds) ->
//   each event is applied as it arrives and moves resourceVersion forward
//   (bookmarks too) -> when the server ends the watch, watch again from there.
//
// Failures: a dropped connection, a timeout or an HTTP error retries after an
// exponential backoff (initial_backoff doubling to max_backoff, +-20%
// jitter) and resumes the watch from the last resourceVersion; 410 Gone
// (resourceVersion compacted away, as an HTTP status or as an ERROR event in
// the stream) relists at once. While a resource is not listed or its last
// attempt failed, the client is "degraded": lookups keep answering from what
// the Store has, and status() says so for the exporter to export.
//
// All watches share one curl multi handle: one thread, one connection per
// watch (or one HTTP/2 connection when the server offers it).
#ifndef REDMAP_AGGREGATORS_METADATA_K8S_K8S_CLIENT_H_
#define REDMAP_AGGREGATORS_METADATA_K8S_K8S_CLIENT_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "aggregators/metadata/k8s/api_server_config.h"
#include "aggregators/metadata/k8s/k8s_store.h"

namespace redmap::k8s {

struct ClientOptions {
  // Local pods are those with spec.nodeName == node_name (required).
  std::string node_name;
  // Pods of every node (for remote IP -> pod) and EndpointSlices. Off on big
  // clusters: then only this node's pods are watched, and remote addresses
  // resolve through Service ClusterIPs only.
  bool cluster_wide = true;
  bool services = true;  // Services: selectors, ClusterIPs
  // ReplicaSets and Jobs (metadata only) to walk pod -> Deployment/CronJob.
  // Off: Deployments are still found from pod-template-hash; Jobs stay Jobs.
  bool owners = true;
  int list_page_size = 500;
  absl::Duration watch_timeout = absl::Minutes(5);  // server ends each watch after this (jittered)
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration list_timeout = absl::Seconds(60);  // per page
  size_t max_event_bytes = 16 << 20;  // one watch event (a JSON line)
  size_t max_page_bytes = 256 << 20;  // one list page
};

struct ResourceStatus {
  Kind kind = Kind::kPods;
  bool synced = false;        // listed at least once
  bool failing = false;       // the last attempt failed; retrying with backoff
  uint64_t lists = 0;         // complete lists (all pages)
  uint64_t relists = 0;       // lists after the first (410 Gone, lost sync)
  uint64_t list_errors = 0;   // failed list requests
  uint64_t watch_errors = 0;  // watches that failed or broke (not a clean end)
  uint64_t events = 0;        // ADDED/MODIFIED/DELETED applied
  uint64_t bookmarks = 0;
  std::string resource_version;
  std::string last_error;  // "" once healthy again
};

struct ClientStatus {
  bool degraded = true;  // some resource unsynced or failing
  std::vector<ResourceStatus> resources;  // one per watched resource
  StoreCounts store;
};

class Client {
 public:
  // Validates options; does not contact the server. `store` must outlive
  // the client.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ApiServerConfig api, ClientOptions options,
                                                        Store* store);
  ~Client();  // Stop()s
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void Start();  // starts the thread
  void Stop();   // ends every transfer and joins; idempotent

  // True once every watched resource has been listed, false after `timeout`.
  bool WaitForSync(absl::Duration timeout) const;
  ClientStatus status() const;
  bool degraded() const;

 private:
  struct Reflector;
  Client(ApiServerConfig api, ClientOptions options, Store* store);
  void Run();
  void StartTransfer(Reflector& r);
  void Finish(Reflector& r, int curl_code);
  void Fail(Reflector& r, bool watch, std::string error);
  void PublishStatus(const Reflector& r);
  static size_t OnData(char* data, size_t size, size_t n, void* self);
  bool OnWatchLine(Reflector& r, std::string_view line);
  bool OnListBody(Reflector& r);

  ApiServerConfig api_;
  ClientOptions opt_;
  Store* store_;
  void* multi_ = nullptr;  // CURLM*
  std::vector<std::unique_ptr<Reflector>> reflectors_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  uint64_t rng_state_;

  mutable absl::Mutex status_mu_;
  std::vector<ResourceStatus> status_ ABSL_GUARDED_BY(status_mu_);
};

}  // namespace redmap::k8s

#endif  // REDMAP_AGGREGATORS_METADATA_K8S_K8S_CLIENT_H_
