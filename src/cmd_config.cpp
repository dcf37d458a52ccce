// config list, get, set, unset: the spool's settings (config.json).
#include "queuectl/commands.hpp"
#include "queuectl/config.hpp"

namespace queuectl::cmd {

std::vector<std::pair<std::string, Json>> config_list(const Spool& spool) {
  return spool.load_config().list();
}

Json config_get(const Spool& spool, const std::string& key) {
  return spool.load_config().get(key);
}

void config_set(const Spool& spool, const std::string& key, const std::string& value) {
  spool.update_config([&](Config& c) {
    c.set(key, value);
    return true;
  });
}

bool config_unset(const Spool& spool, const std::string& key) {
  bool was = false;
  spool.update_config([&](Config& c) { return was = c.unset(key); });
  return was;
}

void check_config(const std::string& key, const std::optional<std::string>& value) {
  Config::canonical_key(key); // an unknown key is bad usage
  if (value) {
    Config().set(key, *value); // so is a bad value
  }
}

} // namespace queuectl::cmd
