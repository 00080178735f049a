#include "aggregators/metadata/k8s/k8s_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "aggregators/common/string_view.h"
#include "aggregators/metadata/target_info.h"
#include "nlohmann/json.hpp"

namespace redmap::k8s {
namespace {

using nlohmann::json;

struct ResourceSpec {
  Kind kind;
  const char* path;
  bool metadata_only;  // only metadata is read: ask for PartialObjectMetadata
};

constexpr ResourceSpec kSpecs[] = {
    {Kind::kPods, "/api/v1/pods", false},
    {Kind::kServices, "/api/v1/services", false},
    {Kind::kEndpointSlices, "/apis/discovery.k8s.io/v1/endpointslices", false},
    {Kind::kReplicaSets, "/apis/apps/v1/replicasets", true},
    {Kind::kJobs, "/apis/batch/v1/jobs", true},
};

std::string Escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// "reason: message" of a meta/v1 Status body, or the body's start.
std::string DescribeBody(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.value("kind", json()).is_string() && j["kind"] == "Status") {
    std::string msg = j["message"].is_string() ? j["message"].get<std::string>() : "";
    return msg;
  }
  return std::string(body.substr(0, 200));
}

std::string MetaString(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return {};
  auto v = m->find(key);
  return v != m->end() && v->is_string() ? v->get<std::string>() : std::string();
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

struct Client::Reflector {
  ResourceSpec spec;
  std::string field_selector;
  enum class Phase { kIdle, kList, kWatch } phase = Phase::kIdle;
  bool need_list = true;
  std::string continue_token;
  absl::Time next_attempt = absl::InfinitePast();
  int failures = 0;
  bool ever_listed = false;
  bool got_event = false;  // this watch delivered something
  bool gone = false;       // the stream said 410 Gone
  std::string abort_reason;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string buf;  // list body, or the unfinished line of a watch
  Client* client = nullptr;
  // Pages of the list in progress.
  std::vector<Pod> pods;
  std::vector<Service> services;
  std::vector<EndpointSlice> slices;
  std::vector<OwnerObject> owners;
  ResourceStatus st;
};

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ApiServerConfig api, ClientOptions options,
                                                       Store* store) {
  if (store == nullptr) return absl::InvalidArgumentError("kubernetes client: no store");
  if (api.server.empty()) return absl::InvalidArgumentError("kubernetes client: no API server");
  if (!options.cluster_wide && options.node_name.empty()) {
    return absl::InvalidArgumentError(
        "kubernetes client: node name unknown (set NODE_NAME from spec.nodeName)");
  }
  if (options.list_page_size <= 0) options.list_page_size = 500;
  if (options.initial_backoff <= absl::ZeroDuration()) options.initial_backoff = absl::Milliseconds(100);
  if (options.max_backoff < options.initial_backoff) options.max_backoff = options.initial_backoff;
  GlobalInit();
  return std::unique_ptr<Client>(new Client(std::move(api), std::move(options), store));
}

Client::Client(ApiServerConfig api, ClientOptions options, Store* store)
    : api_(std::move(api)), opt_(std::move(options)), store_(store) {
  rng_state_ = static_cast<uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count()) | 1;
  for (const ResourceSpec& s : kSpecs) {
    bool on = s.kind == Kind::kPods ||
              (s.kind == Kind::kServices && opt_.services) ||
              (s.kind == Kind::kEndpointSlices && opt_.cluster_wide) ||
              ((s.kind == Kind::kReplicaSets || s.kind == Kind::kJobs) && opt_.owners);
    if (!on) continue;
    auto r = std::make_unique<Reflector>();
    r->spec = s;
    r->client = this;
    r->st.kind = s.kind;
    if (s.kind == Kind::kPods && !opt_.cluster_wide) {
      r->field_selector = "spec.nodeName=" + opt_.node_name;
    }
    reflectors_.push_back(std::move(r));
  }
  absl::MutexLock l(&status_mu_);
  for (const auto& r : reflectors_) status_.push_back(r->st);
}

Client::~Client() { Stop(); }

void Client::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  multi_ = curl_multi_init();
  thread_ = std::thread([this] { Run(); });
}

void Client::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  thread_.join();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
  multi_ = nullptr;
}

void Client::Run() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  while (!stop_) {
    absl::Time now = absl::Now();
    for (auto& r : reflectors_) {
      if (r->easy == nullptr && now >= r->next_attempt) StartTransfer(*r);
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    // A watch the server accepted (200) ends a failing spell, even before
    // its first event.
    for (auto& r : reflectors_) {
      if (r->easy == nullptr || r->phase != Reflector::Phase::kWatch || !r->st.failing) continue;
      long code = 0;
      curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
      if (code == 200) {
        r->st.failing = false;
        r->st.last_error.clear();
        PublishStatus(*r);
      }
    }
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      for (auto& r : reflectors_) {
        if (r->easy == msg->easy_handle) {
          Finish(*r, msg->data.result);
          break;
        }
      }
    }
    // Sleep until data arrives, a backoff ends, or Stop() wakes us.
    absl::Time wake = absl::Now() + absl::Seconds(1);
    for (const auto& r : reflectors_) {
      if (r->easy == nullptr) wake = std::min(wake, r->next_attempt);
    }
    int timeout_ms = static_cast<int>(
        std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - absl::Now())));
    if (!stop_) curl_multi_poll(multi, nullptr, 0, timeout_ms, nullptr);
  }
  for (auto& r : reflectors_) {
    if (r->easy == nullptr) continue;
    curl_multi_remove_handle(multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    r->easy = nullptr;
    r->headers = nullptr;
  }
}

void Client::StartTransfer(Reflector& r) {
  const bool list = r.need_list;
  r.phase = list ? Reflector::Phase::kList : Reflector::Phase::kWatch;
  r.buf.clear();
  r.got_event = false;
  r.gone = false;
  r.abort_reason.clear();

  std::string url = absl::StrCat(api_.server, r.spec.path, "?");
  if (list) {
    absl::StrAppend(&url, "limit=", opt_.list_page_size);
    if (!r.continue_token.empty()) absl::StrAppend(&url, "&continue=", Escape(r.continue_token));
  } else {
    // Jitter the server-side timeout so watches of many nodes do not all
    // reconnect in the same second.
    int64_t base = std::max<int64_t>(1, absl::ToInt64Seconds(opt_.watch_timeout));
    rng_state_ = rng_state_ * 6364136223846793005ull + 1442695040888963407ull;
    int64_t timeout = base + static_cast<int64_t>((rng_state_ >> 33) % (base / 10 + 1));
    absl::StrAppend(&url, "watch=1&allowWatchBookmarks=true&resourceVersion=",
                    Escape(r.st.resource_version), "&timeoutSeconds=", timeout);
  }
  if (!r.field_selector.empty()) absl::StrAppend(&url, "&fieldSelector=", Escape(r.field_selector));

  CURL* e = curl_easy_init();
  r.easy = e;
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Client::OnData);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(opt_.connect_timeout)));
  // Lists are bounded by list_timeout; a watch by the server's timeout plus
  // a margin, so a silently dead connection cannot hang it forever.
  absl::Duration total = list ? opt_.list_timeout : opt_.watch_timeout * 1.1 + absl::Seconds(30);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(total)));
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  // gzip for large lists
  curl_easy_setopt(e, CURLOPT_USERAGENT, absl::StrCat("redmap/", kRedmapVersion).c_str());
  if (api_.insecure_skip_tls_verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!api_.ca_data.empty()) {
    curl_blob blob{const_cast<char*>(api_.ca_data.data()), api_.ca_data.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
  } else if (!api_.ca_file.empty()) {
    curl_easy_setopt(e, CURLOPT_CAINFO, api_.ca_file.c_str());
  }
  if (!api_.client_cert_data.empty()) {
    curl_blob blob{const_cast<char*>(api_.client_cert_data.data()), api_.client_cert_data.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (!api_.client_cert_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, api_.client_cert_file.c_str());
  }
  if (!api_.client_key_data.empty()) {
    curl_blob blob{const_cast<char*>(api_.client_key_data.data()), api_.client_key_data.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (!api_.client_key_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLKEY, api_.client_key_file.c_str());
  }
  curl_slist* h = nullptr;
  std::string token = api_.CurrentToken();  // re-read: rotated tokens
  if (!token.empty()) h = curl_slist_append(h, absl::StrCat("Authorization: Bearer ", token).c_str());
  if (r.spec.metadata_only) {
    h = curl_slist_append(h, list ? "Accept: application/json;as=PartialObjectMetadataList;"
                                    "g=meta.k8s.io;v=v1, application/json"
                                  : "Accept: application/json;as=PartialObjectMetadata;"
                                    "g=meta.k8s.io;v=v1, application/json");
  } else {
    h = curl_slist_append(h, "Accept: application/json");
  }
  r.headers = h;
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_multi_add_handle(static_cast<CURLM*>(multi_), e);
}

size_t Client::OnData(char* data, size_t size, size_t n, void* self) {
  Reflector& r = *static_cast<Reflector*>(self);
  const size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(r.easy, CURLINFO_RESPONSE_CODE, &code);
  if (r.phase == Reflector::Phase::kList || code != 200) {
    // A list page, or an error body: kept whole, bounded.
    size_t limit = code == 200 ? r.client->opt_.max_page_bytes : 64 << 10;
    if (r.buf.size() + len > limit) {
      if (code != 200) return len;  // the start of an error body is enough
      r.abort_reason = absl::StrCat("list page larger than ", limit, " bytes");
      return 0;
    }
    r.buf.append(data, len);
    return len;
  }
  // Watch: one JSON event per line; a line may span chunks.
  std::string_view in(data, len);
  while (!in.empty()) {
    size_t nl = in.find('\n');
    if (nl == std::string_view::npos) {
      if (r.buf.size() + in.size() > r.client->opt_.max_event_bytes) {
        r.abort_reason = absl::StrCat("watch event larger than ", r.client->opt_.max_event_bytes,
                                      " bytes");
        return 0;
      }
      r.buf.append(in);
      break;
    }
    bool ok;
    if (r.buf.empty()) {
      ok = r.client->OnWatchLine(r, in.substr(0, nl));
    } else {
      r.buf.append(in.substr(0, nl));
      ok = r.client->OnWatchLine(r, r.buf);
      r.buf.clear();
    }
    if (!ok) return 0;  // aborts the transfer; Finish reads abort_reason
    in.remove_prefix(nl + 1);
  }
  return len;
}

bool Client::OnWatchLine(Reflector& r, std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return true;
  json ev = json::parse(line, nullptr, false);
  if (!ev.is_object() || !ev.contains("type") || !ev["type"].is_string()) {
    r.abort_reason = "malformed watch event";
    return false;
  }
  const std::string type = ev["type"].get<std::string>();
  const json& obj = ev.contains("object") ? ev["object"] : json();
  if (type == "ERROR") {
    // A meta/v1 Status; 410 Gone: our resourceVersion is too old.
    int code = obj.is_object() && obj.contains("code") && obj["code"].is_number_integer()
                   ? obj["code"].get<int>()
                   : 0;
    r.gone = code == 410;
    r.abort_reason = absl::StrCat("watch ERROR ", code, ": ", DescribeBody(obj.dump(-1, ' ', false, json::error_handler_t::replace)));
    return false;
  }
  std::string rv = MetaString(obj, "resourceVersion");
  r.got_event = true;
  if (type == "BOOKMARK") {
    ++r.st.bookmarks;
    if (!rv.empty()) r.st.resource_version = std::move(rv);
    PublishStatus(r);
    return true;
  }
  const bool deleted = type == "DELETED";
  if (!deleted && type != "ADDED" && type != "MODIFIED") return true;  // unknown: skip
  const Kind k = r.spec.kind;
  bool applied = false;
  if (deleted) {
    auto meta = ParseObjectMeta(obj);
    if (meta.ok()) {
      applied = true;
      switch (k) {
        case Kind::kPods:
          store_->DeletePod(*meta);
          break;
        case Kind::kServices:
          store_->DeleteService(*meta);
          break;
        case Kind::kEndpointSlices:
          store_->DeleteEndpointSlice(*meta);
          break;
        case Kind::kReplicaSets:
        case Kind::kJobs:
          store_->DeleteOwner(k, *meta);
          break;
      }
    }
  } else {
    switch (k) {
      case Kind::kPods:
        if (auto p = ParsePod(obj); p.ok()) {
          store_->UpsertPod(std::move(*p));
          applied = true;
        }
        break;
      case Kind::kServices:
        if (auto s = ParseService(obj); s.ok()) {
          store_->UpsertService(std::move(*s));
          applied = true;
        }
        break;
      case Kind::kEndpointSlices:
        if (auto s = ParseEndpointSlice(obj); s.ok()) {
          store_->UpsertEndpointSlice(std::move(*s));
          applied = true;
        }
        break;
      case Kind::kReplicaSets:
      case Kind::kJobs:
        if (auto o = ParseOwnerObject(obj); o.ok()) {
          store_->UpsertOwner(k, std::move(*o));
          applied = true;
        }
        break;
    }
  }
  if (applied) ++r.st.events;
  if (!rv.empty()) r.st.resource_version = std::move(rv);
  PublishStatus(r);
  return true;
}

bool Client::OnListBody(Reflector& r) {
  json page = json::parse(r.buf, nullptr, false);
  r.buf.clear();
  r.buf.shrink_to_fit();
  if (!page.is_object() || !page.contains("items") || !page["items"].is_array()) {
    r.abort_reason = "list response is not a list";
    return false;
  }
  for (const json& item : page["items"]) {
    switch (r.spec.kind) {
      case Kind::kPods:
        if (auto p = ParsePod(item); p.ok()) r.pods.push_back(std::move(*p));
        break;
      case Kind::kServices:
        if (auto s = ParseService(item); s.ok()) r.services.push_back(std::move(*s));
        break;
      case Kind::kEndpointSlices:
        if (auto s = ParseEndpointSlice(item); s.ok()) r.slices.push_back(std::move(*s));
        break;
      case Kind::kReplicaSets:
      case Kind::kJobs:
        if (auto o = ParseOwnerObject(item); o.ok()) r.owners.push_back(std::move(*o));
        break;
    }
  }
  r.continue_token = MetaString(page, "continue");
  if (!r.continue_token.empty()) return true;  // more pages
  switch (r.spec.kind) {
    case Kind::kPods:
      store_->ReplacePods(std::move(r.pods));
      break;
    case Kind::kServices:
      store_->ReplaceServices(std::move(r.services));
      break;
    case Kind::kEndpointSlices:
      store_->ReplaceEndpointSlices(std::move(r.slices));
      break;
    case Kind::kReplicaSets:
    case Kind::kJobs:
      store_->ReplaceOwners(r.spec.kind, std::move(r.owners));
      break;
  }
  r.pods.clear();
  r.services.clear();
  r.slices.clear();
  r.owners.clear();
  r.st.resource_version = MetaString(page, "resourceVersion");
  if (r.ever_listed) ++r.st.relists;
  r.ever_listed = true;
  ++r.st.lists;
  r.st.synced = true;
  r.need_list = false;
  return true;
}

void Client::Fail(Reflector& r, bool watch, std::string error) {
  if (watch) {
    ++r.st.watch_errors;
  } else {
    ++r.st.list_errors;
  }
  r.st.failing = true;
  r.st.last_error = absl::StrCat(AbslView(KindName(r.spec.kind)), ": ", watch ? "watch" : "list", ": ",
                                 std::move(error));
  // Exponential backoff with +-20% jitter.
  absl::Duration d = opt_.initial_backoff;
  for (int i = 0; i < r.failures && d < opt_.max_backoff; ++i) d *= 2;
  d = std::min(d, opt_.max_backoff);
  rng_state_ = rng_state_ * 6364136223846793005ull + 1442695040888963407ull;
  double jitter = 0.8 + 0.4 * static_cast<double>((rng_state_ >> 33) % 1000) / 1000.0;
  r.next_attempt = absl::Now() + d * jitter;
  ++r.failures;
}

void Client::Finish(Reflector& r, int curl_code) {
  long code = 0;
  curl_easy_getinfo(r.easy, CURLINFO_RESPONSE_CODE, &code);
  curl_multi_remove_handle(static_cast<CURLM*>(multi_), r.easy);
  curl_easy_cleanup(r.easy);
  curl_slist_free_all(r.headers);
  r.easy = nullptr;
  r.headers = nullptr;
  const bool watch = r.phase == Reflector::Phase::kWatch;
  r.phase = Reflector::Phase::kIdle;
  r.next_attempt = absl::InfinitePast();  // immediately, unless Fail() backs off

  if (code == 410 || r.gone) {
    // Too old a resourceVersion (watch) or an expired continue token
    // (list): start over with a fresh list, now.
    r.need_list = true;
    r.continue_token.clear();
    r.pods.clear();
    r.services.clear();
    r.slices.clear();
    r.owners.clear();
    r.st.last_error = absl::StrCat(AbslView(KindName(r.spec.kind)), ": 410 Gone, relisting");
  } else if (curl_code != CURLE_OK || code != 200) {
    std::string why;
    if (!r.abort_reason.empty()) {
      why = r.abort_reason;
    } else if (curl_code != CURLE_OK) {
      why = curl_easy_strerror(static_cast<CURLcode>(curl_code));
    } else {
      why = absl::StrCat("HTTP ", code, ": ", DescribeBody(r.buf));
    }
    if (watch && r.got_event) r.failures = 0;  // it worked for a while
    Fail(r, watch, std::move(why));
    if (!watch) {
      // A list broken mid-way restarts from its first page.
      r.continue_token.clear();
      r.pods.clear();
      r.services.clear();
      r.slices.clear();
      r.owners.clear();
    }
  } else if (!watch) {
    if (!OnListBody(r)) {
      Fail(r, false, r.abort_reason);
      r.continue_token.clear();
    } else if (!r.need_list) {
      r.failures = 0;
      r.st.failing = false;
      r.st.last_error.clear();
    }
  } else {
    // The server ended the watch (timeoutSeconds): resume from where it was.
    r.failures = 0;
    r.st.failing = false;
    r.st.last_error.clear();
  }
  if (r.st.resource_version.empty()) r.need_list = true;
  r.buf.clear();
  PublishStatus(r);
}

void Client::PublishStatus(const Reflector& r) {
  absl::MutexLock l(&status_mu_);
  for (auto& s : status_) {
    if (s.kind == r.spec.kind) s = r.st;
  }
}

ClientStatus Client::status() const {
  ClientStatus out;
  {
    absl::MutexLock l(&status_mu_);
    out.resources = status_;
  }
  out.degraded = false;
  for (const auto& s : out.resources) {
    if (!s.synced || s.failing) out.degraded = true;
  }
  out.store = store_->counts();
  return out;
}

bool Client::degraded() const {
  absl::MutexLock l(&status_mu_);
  for (const auto& s : status_) {
    if (!s.synced || s.failing) return true;
  }
  return false;
}

bool Client::WaitForSync(absl::Duration timeout) const {
  absl::MutexLock l(&status_mu_);
  auto synced = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(status_mu_) {
    for (const auto& s : status_) {
      if (!s.synced) return false;
    }
    return true;
  };
  return status_mu_.AwaitWithTimeout(absl::Condition(&synced), timeout);
}

}  // namespace redmap::k8s
