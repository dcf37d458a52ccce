// nats_link: a connection to a cluster's NATS servers and its JetStream context, for the
// cluster's commands and the intake (linked only into queuectl-cluster).
#pragma once

#include "queuectl/config.hpp"

#include <nats/nats.h>

#include <functional>
#include <string>
#include <vector>

namespace queuectl::cluster {

// What went wrong, in libnats's words: its last error text when it has one.
std::string nats_text(natsStatus s);
// "nats://a:4222,nats://b:4222".
std::string servers_text(const ClusterSettings& c);

// Owns a libnats object and destroys it with `Destroy`.
template <class T, void (*Destroy)(T*)> struct Owned {
  T* p = nullptr;
  Owned() = default;
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() {
    if (p) {
      Destroy(p);
    }
  }
};

class Link {
public:
  // For a command: connects within 2 s or throws Error (exit 1) saying which servers
  // could not be reached.
  explicit Link(const ClusterSettings& c, const jsOptions* js_options = nullptr);

  // For a process that lives on (the intake): never gives up. Returns at once, connected
  // or not; libnats connects and reconnects in the background, a second apart, and
  // `said` hears of each loss and return of the connection.
  using Said = std::function<void(const std::string&)>;
  Link(const ClusterSettings& c, Said said);

  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  natsConnection* nc() const { return m_nc.p; }
  jsCtx* js() const { return m_js.p; }
  // The servers this client knows of: those given and those the cluster told of.
  std::vector<std::string> servers() const;
  // The URL of the server it is connected to; empty when it is not.
  std::string connected() const;

private:
  void open(const ClusterSettings& c, const jsOptions* js_options, Said* lasting);

  Owned<natsConnection, natsConnection_Destroy> m_nc;
  Owned<jsCtx, jsCtx_Destroy> m_js;
};

} // namespace queuectl::cluster
