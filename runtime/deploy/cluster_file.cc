#include "runtime/deploy/cluster_file.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "yaml-cpp/yaml.h"

namespace sparkstack::deploy {
namespace {

// Reads typed fields out of yaml-cpp nodes; every error names the file, the field and the line.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  absl::Status Error(const YAML::Node& node, const std::string& path,
                     const std::string& what) const {
    std::string where;
    if (node.IsDefined() && node.Mark().line >= 0)
      where = absl::StrCat(" (line ", node.Mark().line + 1, ")");
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", path, where, ": ", what));
  }

  static std::string Kind(const YAML::Node& node) {
    if (!node.IsDefined()) return "nothing";
    switch (node.Type()) {
      case YAML::NodeType::Null:
        return "nothing";
      case YAML::NodeType::Scalar:
        return absl::StrCat("'", node.Scalar(), "'");
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Map:
        return "a mapping";
      case YAML::NodeType::Undefined:
        return "nothing";
    }
    return "?";
  }

  absl::Status Map(const YAML::Node& node, const std::string& path,
                   const std::set<std::string>& allowed) const {
    if (!node.IsMap())
      return Error(node, path, absl::StrCat("expected a mapping, found ", Kind(node)));
    for (const auto& item : node) {
      const std::string key = item.first.as<std::string>();
      if (!allowed.count(key)) {
        return Error(
            item.first, path.empty() ? key : absl::StrCat(path, ".", key),
            absl::StrCat("unknown field (expected one of ", absl::StrJoin(allowed, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String(const YAML::Node& node, const std::string& path) const {
    if (!node.IsDefined() || !node.IsScalar() || node.Scalar().empty()) {
      return Error(node, path, absl::StrCat("expected a non-empty string, found ", Kind(node)));
    }
    return node.Scalar();
  }

  absl::StatusOr<int64_t> Int(const YAML::Node& node, const std::string& path, int64_t min,
                              int64_t max) const {
    int64_t value = 0;
    if (!node.IsDefined() || !node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &value) ||
        value < min || value > max) {
      return Error(
          node, path,
          absl::StrCat("expected an integer from ", min, " to ", max, ", found ", Kind(node)));
    }
    return value;
  }

  // `auto` (0) or a positive integer.
  absl::StatusOr<int> Degree(const YAML::Node& node, const std::string& path) const {
    if (!node.IsDefined() || node.IsNull() || (node.IsScalar() && node.Scalar() == "auto"))
      return 0;
    int64_t value = 0;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &value) || value < 1 || value > 1024) {
      return Error(node, path,
                   absl::StrCat("expected auto or a positive integer, found ", Kind(node)));
    }
    return static_cast<int>(value);
  }

 private:
  std::string source_;
};

#define ASSIGN_OR_RETURN_FIELD(lhs, expr)       \
  do {                                          \
    auto result_ = (expr);                      \
    if (!result_.ok()) return result_.status(); \
    lhs = *std::move(result_);                  \
  } while (0)

absl::Status ParseNode(const Reader& r, const YAML::Node& yaml, const std::string& path,
                       int default_port, ClusterNode* node) {
  if (absl::Status s = r.Map(yaml, path, {"name", "control", "data"}); !s.ok()) return s;
  ASSIGN_OR_RETURN_FIELD(node->name, r.String(yaml["name"], path + ".name"));
  std::string control;
  ASSIGN_OR_RETURN_FIELD(control, r.String(yaml["control"], path + ".control"));
  node->control_port = default_port;
  // host, host:port, [v6] or [v6]:port
  std::string host = control;
  std::string port;
  if (!control.empty() && control.front() == '[') {
    const size_t close = control.find(']');
    if (close == std::string::npos) {
      return r.Error(yaml["control"], path + ".control", "unclosed '[' in an IPv6 address");
    }
    host = control.substr(1, close - 1);
    if (close + 1 < control.size()) {
      if (control[close + 1] != ':') {
        return r.Error(yaml["control"], path + ".control", "expected [address]:port");
      }
      port = control.substr(close + 2);
    }
  } else if (std::count(control.begin(), control.end(), ':') == 1) {
    host = control.substr(0, control.find(':'));
    port = control.substr(control.find(':') + 1);
  }
  if (!port.empty()) {
    int value = 0;
    if (!absl::SimpleAtoi(port, &value) || value < 1 || value > 65535) {
      return r.Error(yaml["control"], path + ".control",
                     absl::StrCat("port '", port, "' is not from 1 to 65535"));
    }
    node->control_port = value;
  }
  if (host.empty()) return r.Error(yaml["control"], path + ".control", "empty host");
  node->control_host = host;

  const YAML::Node data = yaml["data"];
  if (data.IsDefined() && !data.IsNull()) {
    const std::string data_path = path + ".data";
    if (absl::Status s = r.Map(data, data_path, {"interface", "ip", "hcas"}); !s.ok()) return s;
    const bool has_interface = data["interface"].IsDefined();
    const bool has_ip = data["ip"].IsDefined();
    if (has_interface == has_ip) {
      return r.Error(data, data_path, "give exactly one of interface (the RoCE netdev) and ip");
    }
    if (has_interface) {
      ASSIGN_OR_RETURN_FIELD(node->data_interface,
                             r.String(data["interface"], data_path + ".interface"));
    } else {
      ASSIGN_OR_RETURN_FIELD(node->data_ip, r.String(data["ip"], data_path + ".ip"));
    }
    const YAML::Node hcas = data["hcas"];
    if (hcas.IsDefined()) {
      if (!hcas.IsSequence()) {
        return r.Error(hcas, data_path + ".hcas",
                       absl::StrCat("expected a list of HCA names, found ", Reader::Kind(hcas)));
      }
      for (size_t i = 0; i < hcas.size(); ++i) {
        std::string hca;
        ASSIGN_OR_RETURN_FIELD(hca, r.String(hcas[i], absl::StrCat(data_path, ".hcas[", i, "]")));
        node->hcas.push_back(hca);
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ClusterFile> Parse(const std::string& text, const std::string& source) {
  const Reader r(source);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not valid YAML (line ", e.mark.line + 1, "): ", e.msg));
  }
  ClusterFile c;
  c.source = source;
  if (absl::Status s = r.Map(
          root, "",
          {"cluster", "model", "parallel", "max_context", "kv_dtype", "ports", "auth", "nodes"});
      !s.ok()) {
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": expected a mapping of cluster fields, found ", Reader::Kind(root)));
    }
    return s;
  }
  ASSIGN_OR_RETURN_FIELD(c.model_dir, r.String(root["model"], "model"));

  if (const YAML::Node p = root["parallel"]; p.IsDefined() && !p.IsNull()) {
    if (p.IsScalar() && p.Scalar() == "auto") {
      // all auto
    } else {
      if (absl::Status s = r.Map(p, "parallel", {"tp", "pp", "ep"}); !s.ok()) return s;
      ASSIGN_OR_RETURN_FIELD(c.tp, r.Degree(p["tp"], "parallel.tp"));
      ASSIGN_OR_RETURN_FIELD(c.pp, r.Degree(p["pp"], "parallel.pp"));
      ASSIGN_OR_RETURN_FIELD(c.ep, r.Degree(p["ep"], "parallel.ep"));
    }
  }
  if (root["max_context"].IsDefined()) {
    ASSIGN_OR_RETURN_FIELD(c.max_context, r.Int(root["max_context"], "max_context", 1, 1 << 24));
  }
  if (root["kv_dtype"].IsDefined()) {
    ASSIGN_OR_RETURN_FIELD(c.kv_dtype, r.String(root["kv_dtype"], "kv_dtype"));
    if (c.kv_dtype != "bf16" && c.kv_dtype != "f16" && c.kv_dtype != "fp8") {
      return r.Error(root["kv_dtype"], "kv_dtype",
                     absl::StrCat("expected bf16, f16 or fp8, found '", c.kv_dtype, "'"));
    }
  }
  if (const YAML::Node ports = root["ports"]; ports.IsDefined()) {
    if (absl::Status s = r.Map(ports, "ports", {"control", "api", "grpc"}); !s.ok()) return s;
    if (ports["control"].IsDefined()) {
      ASSIGN_OR_RETURN_FIELD(c.control_port, r.Int(ports["control"], "ports.control", 1, 65535));
    }
    if (ports["api"].IsDefined()) {
      ASSIGN_OR_RETURN_FIELD(c.api_port, r.Int(ports["api"], "ports.api", 1, 65535));
    }
    if (ports["grpc"].IsDefined()) {
      ASSIGN_OR_RETURN_FIELD(c.grpc_port, r.Int(ports["grpc"], "ports.grpc", 1, 65535));
    }
  }
  if (const YAML::Node auth = root["auth"]; auth.IsDefined()) {
    if (absl::Status s = r.Map(auth, "auth", {"token_file", "api_key_file"}); !s.ok()) return s;
    if (auth["token_file"].IsDefined()) {
      ASSIGN_OR_RETURN_FIELD(c.token_file, r.String(auth["token_file"], "auth.token_file"));
    }
    if (auth["api_key_file"].IsDefined()) {
      ASSIGN_OR_RETURN_FIELD(c.api_key_file, r.String(auth["api_key_file"], "auth.api_key_file"));
    }
  }

  const YAML::Node nodes = root["nodes"];
  if (!nodes.IsDefined() || !nodes.IsSequence() || nodes.size() == 0) {
    return r.Error(nodes, "nodes",
                   absl::StrCat("expected a non-empty list of nodes, found ", Reader::Kind(nodes)));
  }
  std::set<std::string> names, addresses;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string path = absl::StrCat("nodes[", i, "]");
    ClusterNode node;
    if (absl::Status s = ParseNode(r, nodes[i], path, c.control_port, &node); !s.ok()) return s;
    if (!names.insert(node.name).second) {
      return r.Error(nodes[i]["name"], path + ".name",
                     absl::StrCat("node name '", node.name, "' is used twice"));
    }
    const std::string address = absl::StrCat(node.control_host, ":", node.control_port);
    if (!addresses.insert(address).second) {
      return r.Error(nodes[i]["control"], path + ".control",
                     absl::StrCat("control address ", address, " is used twice"));
    }
    c.nodes.push_back(std::move(node));
  }
  const int n = static_cast<int>(c.nodes.size());
  if (c.tp > 0 && c.pp > 0 && c.tp * c.pp != n) {
    return r.Error(root["parallel"], "parallel",
                   absl::StrCat("tp ", c.tp, " x pp ", c.pp, " must equal the ", n, " nodes"));
  }
  if ((c.tp > 0 && n % c.tp != 0) || (c.pp > 0 && n % c.pp != 0)) {
    return r.Error(root["parallel"], "parallel",
                   absl::StrCat("tp and pp must divide the ", n, " nodes"));
  }
  if (c.ep > 0 && c.tp > 0 && c.tp % c.ep != 0) {
    return r.Error(root["parallel"]["ep"], "parallel.ep",
                   absl::StrCat("ep ", c.ep, " must divide tp ", c.tp));
  }
  return c;
}

}  // namespace

absl::StatusOr<ClusterFile> ParseClusterFile(const std::string& text, const std::string& source) {
  // yaml-cpp reports through exceptions (bad conversions included); none may leave this module.
  try {
    return Parse(text, source);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
}

absl::StatusOr<ClusterFile> LoadClusterFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read cluster file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseClusterFile(text.str(), path);
}

}  // namespace sparkstack::deploy
