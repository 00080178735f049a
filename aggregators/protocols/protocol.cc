#include "aggregators/protocols/protocol.h"

#include <iterator>

#include "aggregators/protocols/http1/http1_stitcher.h"

namespace redmap {
namespace {

using Factory = std::unique_ptr<ConnectionParser> (*)();

template <typename T>
std::unique_ptr<ConnectionParser> Make() {
  return std::make_unique<T>();
}

// Indexed by Protocol: one line per protocol.
constexpr Factory kFactories[] = {
    nullptr,                      // kUnknown
    &Make<http1::Http1Stitcher>,  // kHttp1
};
static_assert(std::size(kFactories) == SelfMetrics::kProtocols);

}  // namespace

std::unique_ptr<ConnectionParser> NewConnectionParser(Protocol protocol) {
  const size_t i = static_cast<size_t>(protocol);
  if (i >= std::size(kFactories) || kFactories[i] == nullptr) return nullptr;
  return kFactories[i]();
}

void ConnContext::FillSpan(Span* span) const {
  span->side = role;
  span->conn = key;
  span->cgroup_id = cgroup_id;
  span->process_name = process_name;
  span->has_tcp_seq = has_tcp_seq;
  if (role == Role::kClient) {
    span->client = local;
    span->server = remote;
  } else {
    span->client = remote;
    span->server = local;
  }
}

}  // namespace redmap
