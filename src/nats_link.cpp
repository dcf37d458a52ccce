#include "queuectl/nats_link.hpp"

#include "queuectl/error.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <memory>

namespace queuectl::cluster {

namespace {

// How long a command waits for the servers: a cluster that does not answer in this
// time is down for a command line (the intake retries on its own schedule).
constexpr int k_connect_timeout_ms = 2000;
constexpr int k_request_timeout_ms = 5000;

void said_disconnected(natsConnection* nc, void* closure) {
  if (natsConnection_IsClosed(nc)) {
    return; // closed by us: the process is stopping
  }
  (*static_cast<Link::Said*>(closure))("lost the connection to the NATS servers; reconnecting");
}

void said_reconnected(natsConnection* nc, void* closure) {
  char url[256] = "";
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  (*static_cast<Link::Said*>(closure))(fmt::format("connected to {}", url));
}

} // namespace

std::string nats_text(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  return last && *last ? last : natsStatus_GetText(s);
}

std::string servers_text(const ClusterSettings& c) {
  std::string out;
  for (const std::string& url : c.servers) {
    out += (out.empty() ? "" : ",") + url;
  }
  return out;
}

Link::Link(const ClusterSettings& c, const jsOptions* js_options) {
  open(c, js_options, nullptr);
}

Link::Link(const ClusterSettings& c, Said said) {
  // The callbacks may run on libnats's threads until the library is closed: their
  // closure lives as long as the process (a lasting link is made once per process).
  static std::vector<std::unique_ptr<Said>> closures;
  closures.push_back(std::make_unique<Said>(std::move(said)));
  open(c, nullptr, closures.back().get());
}

void Link::open(const ClusterSettings& c, const jsOptions* js_options, Said* lasting) {
  Owned<natsOptions, natsOptions_Destroy> opts;
  std::vector<const char*> urls;
  for (const std::string& u : c.servers) {
    urls.push_back(u.c_str());
  }
  natsStatus s = natsOptions_Create(&opts.p);
  if (s == NATS_OK) {
    s = natsOptions_SetServers(opts.p, urls.data(), static_cast<int>(urls.size()));
  }
  if (s == NATS_OK) {
    s = natsOptions_SetTimeout(opts.p, k_connect_timeout_ms);
  }
  if (s == NATS_OK) {
    // A command tries each server a few times; the intake forever, a second apart.
    s = natsOptions_SetMaxReconnect(opts.p, lasting ? -1 : 2);
  }
  if (s == NATS_OK && lasting) {
    s = natsOptions_SetReconnectWait(opts.p, 1000);
  }
  if (s == NATS_OK && lasting) {
    s = natsOptions_SetRetryOnFailedConnect(opts.p, true, said_reconnected, lasting);
  }
  if (s == NATS_OK && lasting) {
    s = natsOptions_SetDisconnectedCB(opts.p, said_disconnected, lasting);
  }
  if (s == NATS_OK && lasting) {
    s = natsOptions_SetReconnectedCB(opts.p, said_reconnected, lasting);
  }
  if (s == NATS_OK && c.creds) {
    s = natsOptions_SetUserCredentialsFromFiles(opts.p, c.creds->c_str(), nullptr);
  }
  if (s == NATS_OK) {
    s = natsConnection_Connect(&m_nc.p, opts.p);
    if (s == NATS_NOT_YET_CONNECTED && lasting) {
      s = NATS_OK;
    }
  }
  if (s != NATS_OK) {
    fail(fmt::format("cannot reach the NATS servers {}: {} (is nats-server running there? see queuectl-cluster(1))",
                     servers_text(c), nats_text(s)));
  }
  jsOptions o;
  jsOptions_Init(&o);
  if (js_options) {
    o = *js_options;
  }
  o.Wait = k_request_timeout_ms;
  if ((s = natsConnection_JetStream(&m_js.p, m_nc.p, &o)) != NATS_OK) {
    fail(fmt::format("cannot use JetStream on {}: {}", servers_text(c), nats_text(s)));
  }
}

std::vector<std::string> Link::servers() const {
  char** list = nullptr;
  int n = 0;
  std::vector<std::string> out;
  if (natsConnection_GetServers(m_nc.p, &list, &n) == NATS_OK) {
    for (int i = 0; i < n; ++i) {
      out.emplace_back(list[i]);
      free(list[i]); // NOLINT(cppcoreguidelines-no-malloc): libnats's allocation
    }
    free(list); // NOLINT(cppcoreguidelines-no-malloc)
  }
  return out;
}

std::string Link::connected() const {
  char buf[256] = "";
  natsConnection_GetConnectedUrl(m_nc.p, buf, sizeof buf);
  return buf;
}

} // namespace queuectl::cluster
