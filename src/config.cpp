#include "queuectl/config.hpp"

#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace queuectl {

namespace {

enum class Kind { integer, number };

struct KeyInfo {
  const char* name;
  Kind kind;
  double min; // inclusive lower bound; -inf for none
  double def;
  const char* what; // for messages
};

const KeyInfo k_keys[] = {
    {"max-retries", Kind::integer, 0, 3, "an integer >= 0"},
    {"backoff-base", Kind::number, 1, 2, "a number >= 1"},
    {"backoff-max", Kind::number, 0, 3600, "a number of seconds >= 0"},
    {"timeout", Kind::number, 0, 0, "a number of seconds >= 0 (0 = none)"},
    {"priority", Kind::integer, -INFINITY, 0, "an integer"},
};

const KeyInfo& info(std::string_view canonical) {
  for (const KeyInfo& k : k_keys) {
    if (canonical == k.name) {
      return k;
    }
  }
  bad_usage(fmt::format("unknown config key '{}'", canonical));
}

Json number_json(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) {
    return static_cast<std::int64_t>(v);
  }
  return v;
}

double as_double(const Json& v, double dflt) {
  return v.is_number() ? v.get<double>() : dflt;
}

} // namespace

const std::vector<std::string>& Config::keys() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const KeyInfo& k : k_keys) {
      v.emplace_back(k.name);
    }
    return v;
  }();
  return names;
}

std::string Config::canonical_key(std::string_view key) {
  std::string k(key);
  for (char& c : k) {
    if (c == '_') {
      c = '-';
    }
  }
  for (const KeyInfo& i : k_keys) {
    if (k == i.name) {
      return k;
    }
  }
  bad_usage(fmt::format("unknown config key '{}' (known keys: max-retries, backoff-base, "
                        "backoff-max, timeout, priority)",
                        key));
}

Config Config::parse(std::string_view text, const std::string& display) {
  Config c;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return c;
  }
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    fail(fmt::format("config file '{}' is not a JSON object; fix or remove it", display));
  }
  c.m_values = std::move(j);
  return c;
}

Json Config::get(std::string_view key) const {
  const std::string k = canonical_key(key);
  const auto it = m_values.find(k);
  if (it != m_values.end() && it->is_number()) {
    return *it;
  }
  return number_json(info(k).def);
}

void Config::set(std::string_view key, std::string_view value) {
  const std::string k = canonical_key(key);
  const KeyInfo& ki = info(k);
  const std::string text(value);
  const auto bad = [&] { bad_usage(fmt::format("invalid value '{}' for {}: expected {}", value, k, ki.what)); };
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) {
    bad();
  }
  char* end = nullptr;
  errno = 0;
  if (ki.kind == Kind::integer) {
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || static_cast<double>(v) < ki.min) {
      bad();
    }
    m_values[k] = static_cast<std::int64_t>(v);
  } else {
    const double v = std::strtod(text.c_str(), &end);
    if (errno != 0 || *end != '\0' || !std::isfinite(v) || v < ki.min) {
      bad();
    }
    m_values[k] = number_json(v);
  }
}

bool Config::unset(std::string_view key) {
  const std::string k = canonical_key(key);
  return m_values.erase(k) > 0;
}

std::vector<std::pair<std::string, Json>> Config::list() const {
  std::vector<std::pair<std::string, Json>> out;
  for (const KeyInfo& k : k_keys) {
    out.emplace_back(k.name, get(k.name));
  }
  return out;
}

std::map<std::string, QueueSettings> Config::queues() const {
  std::map<std::string, QueueSettings> out;
  const auto all = m_values.find("queues");
  if (all == m_values.end() || !all->is_object()) {
    return out;
  }
  for (const auto& [name, v] : all->items()) {
    if (!valid_queue(name) || !v.is_object()) {
      continue;
    }
    QueueSettings q;
    if (const auto c = v.find("concurrency"); c != v.end() && c->is_number_integer() && c->get<std::int64_t>() >= 1) {
      q.concurrency = c->get<std::int64_t>();
    }
    if (const auto p = v.find("paused"); p != v.end() && p->is_boolean()) {
      q.paused = p->get<bool>();
    }
    out.emplace(name, q);
  }
  return out;
}

QueueSettings Config::queue(const std::string& name) const {
  const auto all = queues();
  const auto it = all.find(name);
  return it == all.end() ? QueueSettings{} : it->second;
}

void Config::set_queue(const std::string& name, const QueueSettings& q) {
  Json& all = m_values["queues"];
  if (!all.is_object()) {
    all = Json::object();
  }
  if (q == QueueSettings{}) {
    all.erase(name);
    if (all.empty()) {
      m_values.erase("queues");
    }
    return;
  }
  Json v = Json::object();
  if (q.concurrency) {
    v["concurrency"] = *q.concurrency;
  }
  if (q.paused) {
    v["paused"] = true;
  }
  all[name] = std::move(v);
}

std::optional<ClusterSettings> Config::cluster() const {
  const auto c = m_values.find("cluster");
  if (c == m_values.end() || !c->is_object()) {
    return std::nullopt;
  }
  ClusterSettings out;
  if (const auto s = c->find("servers"); s != c->end() && s->is_array()) {
    for (const Json& url : *s) {
      if (url.is_string() && !url.get<std::string>().empty()) {
        out.servers.push_back(url.get<std::string>());
      }
    }
  }
  if (out.servers.empty()) {
    return std::nullopt;
  }
  if (const auto s = c->find("stream"); s != c->end() && s->is_string() && !s->get<std::string>().empty()) {
    out.stream = s->get<std::string>();
  }
  if (const auto f = c->find("creds"); f != c->end() && f->is_string()) {
    out.creds = f->get<std::string>();
  }
  return out;
}

void Config::set_cluster(const std::optional<ClusterSettings>& c) {
  if (!c) {
    m_values.erase("cluster");
    return;
  }
  Json v = {{"servers", c->servers}, {"stream", c->stream}};
  if (c->creds) {
    v["creds"] = *c->creds;
  }
  m_values["cluster"] = std::move(v);
}

JobDefaults Config::job_defaults() const {
  JobDefaults d;
  d.max_retries = get("max-retries").get<std::int64_t>();
  d.timeout = as_double(get("timeout"), 0);
  d.priority = get("priority").get<std::int64_t>();
  return d;
}

double Config::backoff_base() const {
  return as_double(get("backoff-base"), 2);
}
double Config::backoff_max() const {
  return as_double(get("backoff-max"), 3600);
}

std::string Config::dump() const {
  return m_values.dump(2) + "\n";
}

const Config& ConfigCache::get(const sys::Dir& root) {
  if (m_watched && m_loaded) {
    return m_config;
  }
  const auto st = root.stat("config.json");
  const std::uint64_t ino = st ? st->st_ino : 0;
  const std::int64_t mtime = st ? st->st_mtim.tv_sec * 1'000'000'000LL + st->st_mtim.tv_nsec : 0;
  const std::int64_t size = st ? st->st_size : 0;
  // config.json is always replaced by rename, so a change shows as a new inode.
  if (!m_loaded || ino != m_ino || mtime != m_mtime_ns || size != m_size) {
    const auto text = st ? root.read_file("config.json") : std::nullopt;
    m_config = Config::parse(text.value_or(""), root.path_of("config.json"));
    m_loaded = true;
    m_ino = ino;
    m_mtime_ns = mtime;
    m_size = size;
  }
  return m_config;
}

std::string format_value(const Json& v) {
  if (v.is_number_float()) {
    return fmt::format("{}", v.get<double>());
  }
  if (v.is_string()) {
    return v.get<std::string>();
  }
  return v.dump();
}

} // namespace queuectl
