// Where the Kubernetes API server is and how to authenticate to it:
// in-cluster (service-account token and CA mounted into the pod, address from
// KUBERNETES_SERVICE_HOST/PORT) or from a kubeconfig file (outside a cluster).
#ifndef REDMAP_AGGREGATORS_METADATA_K8S_API_SERVER_CONFIG_H_
#define REDMAP_AGGREGATORS_METADATA_K8S_API_SERVER_CONFIG_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace redmap::k8s {

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct ApiServerConfig {
  std::string server;  // "https://10.96.0.1:443" (no trailing slash)
  // TLS: the CA as a file or as PEM data; neither means the system's CAs.
  std::string ca_file;
  std::string ca_data;
  bool insecure_skip_tls_verify = false;
  // Bearer token, given directly or as a file re-read before each request
  // (service-account tokens are rotated by the kubelet).
  std::string token;
  std::string token_file;
  // Client certificate authentication, as files or PEM data.
  std::string client_cert_file;
  std::string client_cert_data;
  std::string client_key_file;
  std::string client_key_data;
  std::string source;  // "in-cluster" or the kubeconfig path, for logs

  // The token to send now: token_file's contents (trimmed) if set, else token.
  std::string CurrentToken() const;
};

// Looks up an environment variable; tests inject their own.
using EnvLookup = std::function<std::string(const char*)>;
std::string GetEnv(const char* name);  // getenv, "" when unset

// In-cluster: $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, token and CA
// from `sa_dir`. Fails when not running in a pod.
absl::StatusOr<ApiServerConfig> LoadInCluster(const EnvLookup& env = GetEnv,
                                              const std::string& sa_dir = kServiceAccountDir);

// A kubeconfig file (YAML or JSON): the named context, else current-context.
// Supports server, certificate-authority(-data), insecure-skip-tls-verify,
// token, tokenFile, client-certificate(-data), client-key(-data); relative
// file paths are relative to the kubeconfig's directory. exec and
// auth-provider plugins are refused with an error saying so.
absl::StatusOr<ApiServerConfig> LoadKubeconfig(const std::string& path,
                                               const std::string& context = "");

// What redmap uses when nothing is configured: `kubeconfig` if given; else
// in-cluster when KUBERNETES_SERVICE_HOST is set; else the first file of
// $KUBECONFIG; else ~/.kube/config.
absl::StatusOr<ApiServerConfig> LoadApiServerConfig(const std::string& kubeconfig = "",
                                                    const EnvLookup& env = GetEnv,
                                                    const std::string& sa_dir = kServiceAccountDir);

// NODE_NAME (set from spec.nodeName by the downward API), else the hostname.
std::string NodeNameFromEnv(const EnvLookup& env = GetEnv);

}  // namespace redmap::k8s

#endif  // REDMAP_AGGREGATORS_METADATA_K8S_API_SERVER_CONFIG_H_
