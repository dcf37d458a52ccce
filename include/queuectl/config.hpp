// config: the spool's settings (SPOOL/config.json) and their validation.
#pragma once

#include "queuectl/job.hpp"
#include "queuectl/sys.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace queuectl {

// A queue's settings (SPEC section 7), kept in config.json under "queues".
struct QueueSettings {
  std::optional<std::int64_t> concurrency; // at most this many of its jobs run at once
  bool paused = false;                     // no new job of it starts
  bool operator==(const QueueSettings&) const = default;
};

// The NATS JetStream cluster a spool has joined (SPEC section 8), kept in config.json
// under "cluster".
struct ClusterSettings {
  std::vector<std::string> servers; // nats://host:port, at least one
  std::string stream = "QUEUECTL";
  std::optional<std::string> creds; // a NATS credentials file
  bool operator==(const ClusterSettings&) const = default;
};

class Config {
public:
  // The known keys, with dashes, in the order `config list` prints them.
  static const std::vector<std::string>& keys();
  // "max_retries" -> "max-retries". Throws Error(Exit::usage) for an unknown key.
  static std::string canonical_key(std::string_view key);

  // Parses config.json; an empty text means defaults. Throws Error(Exit::failure) when
  // the file is not a JSON object (a broken config is a spool problem, not bad usage).
  static Config parse(std::string_view text, const std::string& display);

  // The value of a key: the stored one, else its default.
  Json get(std::string_view key) const;
  // Validates `value` for `key` and stores it. Throws Error(Exit::usage) when invalid.
  void set(std::string_view key, std::string_view value);
  // Removes a stored value (the default applies again). False if none was stored.
  bool unset(std::string_view key);

  // key/value pairs of every known key, defaults included.
  std::vector<std::pair<std::string, Json>> list() const;

  // The queues that have settings, by name. Entries that are not valid are ignored.
  std::map<std::string, QueueSettings> queues() const;
  QueueSettings queue(const std::string& name) const;
  // Stores a queue's settings; the defaults remove its entry.
  void set_queue(const std::string& name, const QueueSettings& s);

  // The cluster joined, if any; an entry that is not valid counts as none.
  std::optional<ClusterSettings> cluster() const;
  void set_cluster(const std::optional<ClusterSettings>& c);

  JobDefaults job_defaults() const;
  double backoff_base() const;
  double backoff_max() const;

  std::string dump() const;

private:
  Json m_values = Json::object(); // only what was set, plus unknown keys kept as they are
};

// A config that is re-read only when config.json changes (one fstatat per use instead of
// open, read and parse): what long-running workers use. Changes apply at the next use.
class ConfigCache {
public:
  const Config& get(const sys::Dir& root);
  // For a caller that watches the spool's root (inotify) and calls changed() whenever
  // config.json is replaced, removed or its events may have been lost: get() then
  // re-reads only after changed(), with no fstatat per use.
  void watched() { m_watched = true; }
  void changed() { m_loaded = false; }

private:
  Config m_config;
  bool m_loaded = false;
  bool m_watched = false;
  std::uint64_t m_ino = 0;
  std::int64_t m_mtime_ns = -1;
  std::int64_t m_size = -1;
};

// Renders a config or job number as users write it: 3, 2.5, 0.
std::string format_value(const Json& v);

} // namespace queuectl
