#include "aggregators/protocols/protocol.h"

#include "aggregators/protocols/http1/http1_stitcher.h"

namespace redmap {

std::unique_ptr<ConnectionParser> NewConnectionParser(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp1:
      return std::make_unique<http1::Http1Stitcher>();
    case Protocol::kUnknown:
      break;
  }
  return nullptr;
}

}  // namespace redmap
