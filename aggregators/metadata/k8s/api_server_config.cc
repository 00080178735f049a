#include "aggregators/metadata/k8s/api_server_config.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "aggregators/metadata/target_info.h"
#include "yaml-cpp/yaml.h"

namespace redmap::k8s {
namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool FileExists(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

std::string Scalar(const YAML::Node& n, const char* key) {
  if (!n.IsMap()) return {};
  YAML::Node v = n[key];
  return v && v.IsScalar() ? v.as<std::string>() : std::string();
}

// The entry of a named list ("clusters", "users", "contexts") called `name`.
YAML::Node Named(const YAML::Node& root, const char* list, const std::string& name,
                 const char* inner) {
  YAML::Node l = root[list];
  if (!l || !l.IsSequence()) return {};
  for (const YAML::Node& e : l) {
    if (e.IsMap() && Scalar(e, "name") == name) {
      YAML::Node in = e[inner];
      if (in && in.IsMap()) return in;
    }
  }
  return {};
}

absl::StatusOr<std::string> Base64Pem(const std::string& data, const char* what) {
  std::string out;
  if (!absl::Base64Unescape(data, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid base64"));
  }
  return out;
}

std::string Resolve(const std::filesystem::path& dir, const std::string& p) {
  if (p.empty() || p.front() == '/') return p;
  return (dir / p).string();
}

absl::StatusOr<ApiServerConfig> ParseKubeconfig(const YAML::Node& root, const std::string& path,
                                                const std::string& context_name) {
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a kubeconfig"));
  std::string ctx_name = context_name.empty() ? Scalar(root, "current-context") : context_name;
  if (ctx_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no current-context and none given"));
  }
  YAML::Node ctx = Named(root, "contexts", ctx_name, "context");
  if (!ctx.IsMap()) {
    return absl::NotFoundError(absl::StrCat(path, ": context \"", ctx_name, "\" not found"));
  }
  const std::string cluster_name = Scalar(ctx, "cluster");
  const std::string user_name = Scalar(ctx, "user");
  YAML::Node cluster = Named(root, "clusters", cluster_name, "cluster");
  if (!cluster.IsMap()) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cluster \"", cluster_name, "\" of context \"", ctx_name, "\" not found"));
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  ApiServerConfig c;
  c.source = path;
  c.server = std::string(absl::StripSuffix(Scalar(cluster, "server"), "/"));
  if (c.server.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cluster \"", cluster_name, "\" has no server"));
  }
  c.ca_file = Resolve(dir, Scalar(cluster, "certificate-authority"));
  if (std::string d = Scalar(cluster, "certificate-authority-data"); !d.empty()) {
    auto pem = Base64Pem(d, "certificate-authority-data");
    if (!pem.ok()) return pem.status();
    c.ca_data = std::move(*pem);
  }
  c.insecure_skip_tls_verify = Scalar(cluster, "insecure-skip-tls-verify") == "true";
  if (user_name.empty()) return c;
  YAML::Node user = Named(root, "users", user_name, "user");
  if (!user.IsMap()) {
    return absl::NotFoundError(absl::StrCat(path, ": user \"", user_name, "\" not found"));
  }
  if (user["exec"] || user["auth-provider"]) {
    return absl::UnimplementedError(absl::StrCat(
        path, ": user \"", user_name,
        "\" authenticates through an exec/auth-provider plugin, which redmap does not run; "
        "use a token, a tokenFile or a client certificate (e.g. a service account's token)"));
  }
  c.token = Scalar(user, "token");
  c.token_file = Resolve(dir, Scalar(user, "tokenFile"));
  c.client_cert_file = Resolve(dir, Scalar(user, "client-certificate"));
  c.client_key_file = Resolve(dir, Scalar(user, "client-key"));
  if (std::string d = Scalar(user, "client-certificate-data"); !d.empty()) {
    auto pem = Base64Pem(d, "client-certificate-data");
    if (!pem.ok()) return pem.status();
    c.client_cert_data = std::move(*pem);
  }
  if (std::string d = Scalar(user, "client-key-data"); !d.empty()) {
    auto pem = Base64Pem(d, "client-key-data");
    if (!pem.ok()) return pem.status();
    c.client_key_data = std::move(*pem);
  }
  return c;
}

}  // namespace

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string ApiServerConfig::CurrentToken() const {
  if (!token_file.empty()) {
    auto t = ReadWholeFile(token_file);
    if (t.ok()) return std::string(absl::StripAsciiWhitespace(*t));
  }
  return token;
}

absl::StatusOr<ApiServerConfig> LoadInCluster(const EnvLookup& env, const std::string& sa_dir) {
  std::string host = env("KUBERNETES_SERVICE_HOST");
  std::string port = env("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    return absl::FailedPreconditionError(
        "not in a Kubernetes pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset");
  }
  ApiServerConfig c;
  c.source = "in-cluster";
  if (host.find(':') != std::string::npos) host = absl::StrCat("[", host, "]");  // IPv6
  c.server = absl::StrCat("https://", host, ":", port);
  c.token_file = sa_dir + "/token";
  if (!FileExists(c.token_file)) {
    return absl::FailedPreconditionError(
        absl::StrCat("in-cluster: service-account token ", c.token_file,
                     " is missing (automountServiceAccountToken: false?)"));
  }
  c.ca_file = sa_dir + "/ca.crt";
  if (!FileExists(c.ca_file)) {
    return absl::FailedPreconditionError(absl::StrCat("in-cluster: CA ", c.ca_file, " is missing"));
  }
  return c;
}

absl::StatusOr<ApiServerConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  auto text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  try {
    return ParseKubeconfig(YAML::Load(*text), path, context);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
}

absl::StatusOr<ApiServerConfig> LoadApiServerConfig(const std::string& kubeconfig,
                                                    const EnvLookup& env,
                                                    const std::string& sa_dir) {
  if (!kubeconfig.empty()) return LoadKubeconfig(kubeconfig);
  if (!env("KUBERNETES_SERVICE_HOST").empty()) return LoadInCluster(env, sa_dir);
  std::string from_env = env("KUBECONFIG");
  if (!from_env.empty()) {
    for (absl::string_view p : absl::StrSplit(from_env, ':', absl::SkipEmpty())) {
      if (FileExists(std::string(p))) return LoadKubeconfig(std::string(p));
    }
    return absl::NotFoundError(absl::StrCat("no readable file in KUBECONFIG=", from_env));
  }
  std::string home = env("HOME");
  if (!home.empty() && FileExists(home + "/.kube/config")) return LoadKubeconfig(home + "/.kube/config");
  return absl::NotFoundError(
      "no Kubernetes API configured: not in a pod (KUBERNETES_SERVICE_HOST unset), no "
      "KUBECONFIG and no ~/.kube/config");
}

std::string NodeNameFromEnv(const EnvLookup& env) {
  std::string n = env("NODE_NAME");
  return n.empty() ? LocalHostName() : n;
}

}  // namespace redmap::k8s
