#include "queuectl/cluster.hpp"

#include "queuectl/error.hpp"

#include <fmt/format.h>
#include <nats/nats.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>

namespace queuectl::cluster {

namespace {

// How long a command waits for the servers: a cluster that does not answer in this
// time is down for a command line (the intake retries on its own schedule).
constexpr int k_connect_timeout_ms = 2000;
constexpr int k_request_timeout_ms = 5000;
constexpr int k_publish_timeout_ms = 30000;

// What went wrong, in libnats's words: its last error text when it has one.
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

// A connection to the cluster and its JetStream context; throws Error (exit 1) saying
// which servers could not be reached.
class Link {
public:
  explicit Link(const ClusterSettings& c, const jsOptions* js_options = nullptr) {
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
      s = natsOptions_SetMaxReconnect(opts.p, 2);
    }
    if (s == NATS_OK && c.creds) {
      s = natsOptions_SetUserCredentialsFromFiles(opts.p, c.creds->c_str(), nullptr);
    }
    if (s == NATS_OK) {
      s = natsConnection_Connect(&m_nc.p, opts.p);
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
  natsConnection* nc() const { return m_nc.p; }
  jsCtx* js() const { return m_js.p; }
  // The servers this client knows of: those given and those the cluster told of.
  std::vector<std::string> servers() const {
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
  std::string connected() const {
    char buf[256] = "";
    natsConnection_GetConnectedUrl(m_nc.p, buf, sizeof buf);
    return buf;
  }

private:
  Owned<natsConnection, natsConnection_Destroy> m_nc;
  Owned<jsCtx, jsCtx_Destroy> m_js;
};

bool valid_stream_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

ClusterSettings joined(const Spool& spool) {
  const auto c = spool.load_config().cluster();
  if (!c) {
    fail(fmt::format("the spool {} has joined no cluster: run 'queuectl cluster join URL' first",
                     spool.root().string()));
  }
  return *c;
}

std::string subject_of(const Job& job) {
  return k_jobs_subject + job.queue();
}

} // namespace

ClusterSettings parse_join(const JoinArgs& a) {
  ClusterSettings c;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = a.servers.find(',', start);
    std::string url = a.servers.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (url.empty() || url.find_first_of(" \t\n") != std::string::npos) {
      bad_usage(fmt::format("invalid server list '{}': expected URL[,URL...], such as nats://host:4222", a.servers));
    }
    if (url.find("://") == std::string::npos) {
      url = "nats://" + url;
    }
    c.servers.push_back(std::move(url));
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  if (a.stream) {
    if (!valid_stream_name(*a.stream)) {
      bad_usage(fmt::format("invalid --stream '{}': 1 to 64 letters, digits, '_' or '-'", *a.stream));
    }
    c.stream = *a.stream;
  }
  if (a.creds) {
    std::error_code ec;
    const auto abs = std::filesystem::absolute(*a.creds, ec);
    if (ec || !std::filesystem::is_regular_file(abs, ec)) {
      bad_usage(fmt::format("--creds '{}' is not a readable file", *a.creds));
    }
    c.creds = abs.string();
  }
  return c;
}

Json join(Spool& spool, const ClusterSettings& c) {
  Link link(c);
  // Replicas: one per server, up to three (a single server has no cluster to copy to).
  const int replicas = static_cast<int>(std::min<std::size_t>(3, std::max<std::size_t>(1, link.servers().size())));
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s = js_GetStreamInfo(&si, link.js(), c.stream.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) {
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const std::string subjects = std::string(k_jobs_subject) + ">";
    const char* subj[] = {subjects.c_str()};
    sc.Name = c.stream.c_str();
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Retention = js_WorkQueuePolicy;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    s = js_AddStream(&si, link.js(), &sc, nullptr, &jerr);
  }
  if (s != NATS_OK) {
    fail(fmt::format("cannot create the stream {} on {}: {}", c.stream, servers_text(c), nats_text(s)));
  }
  const bool work_queue = si->Config->Retention == js_WorkQueuePolicy;
  jsStreamInfo_Destroy(si);
  if (!work_queue) {
    fail(fmt::format("the stream {} exists and is not a work-queue stream: pick another with --stream", c.stream));
  }
  kvStore* kv = nullptr;
  s = js_KeyValue(&kv, link.js(), k_jobs_bucket);
  if (s == NATS_NOT_FOUND) {
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = k_jobs_bucket;
    kc.History = 1;
    kc.StorageType = js_FileStorage;
    kc.Replicas = replicas;
    s = js_CreateKeyValue(&kv, link.js(), &kc);
  }
  if (s != NATS_OK) {
    fail(fmt::format("cannot create the key-value bucket {} on {}: {}", k_jobs_bucket, servers_text(c), nats_text(s)));
  }
  kvStore_Destroy(kv);
  spool.update_config([&](Config& cfg) {
    cfg.set_cluster(c);
    return true;
  });
  return status(spool);
}

bool leave(Spool& spool) {
  bool was = false;
  spool.update_config([&](Config& cfg) {
    was = cfg.cluster().has_value();
    cfg.set_cluster(std::nullopt);
    return was;
  });
  return was;
}

Json status(const Spool& spool) {
  const ClusterSettings c = joined(spool);
  Link link(c);
  Json out = Json::object();
  out["servers"] = link.servers();
  out["connected"] = link.connected();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  if (const natsStatus s = js_GetStreamInfo(&si, link.js(), c.stream.c_str(), nullptr, &jerr); s != NATS_OK) {
    fail(fmt::format("cannot read the stream {}: {}", c.stream, nats_text(s)));
  }
  out["stream"] = {{"name", c.stream},
                   {"waiting", si->State.Msgs},
                   {"replicas", si->Config->Replicas},
                   {"consumers", si->State.Consumers}};
  jsStreamInfo_Destroy(si);
  // The jobs' last known records: per state, and per host and state.
  Json jobs = Json::object();
  Json hosts = Json::object();
  kvStore* kv = nullptr;
  if (js_KeyValue(&kv, link.js(), k_jobs_bucket) == NATS_OK) {
    kvKeysList keys{};
    if (kvStore_Keys(&keys, kv, nullptr) == NATS_OK) {
      for (int i = 0; i < keys.Count; ++i) {
        kvEntry* e = nullptr;
        if (kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK) {
          continue; // removed meanwhile
        }
        const Json rec = Json::parse(kvEntry_ValueString(e), nullptr, false);
        kvEntry_Destroy(e);
        if (!rec.is_object()) {
          continue;
        }
        const std::string state = rec.value("state", "unknown");
        const std::string host = rec.value("host", "");
        jobs[state] = jobs.value(state, 0) + 1;
        if (!host.empty()) {
          Json& h = hosts[host];
          if (!h.is_object()) {
            h = Json::object();
          }
          h[state] = h.value(state, 0) + 1;
        }
      }
      kvKeysList_Destroy(&keys);
    }
    kvStore_Destroy(kv);
  }
  out["jobs"] = std::move(jobs);
  out["hosts"] = std::move(hosts);
  return out;
}

JobIds enqueue(const Spool& spool, const cmd::EnqueueRequest& r) {
  const ClusterSettings c = joined(spool);
  const JobOverrides& o = r.overrides;
  if (o.hold || !o.after.empty()) {
    bad_usage(o.hold
                  ? "--hold cannot be used with --cluster: a held job could be released only on the host that took it"
                  : "--after cannot be used with --cluster: dependencies are between jobs of one spool");
  }
  const JobDefaults d = spool.load_config().job_defaults();
  const Micros now = now_micros();
  // Every job is built and checked before the first is published: all or nothing, as
  // a local enqueue.
  std::vector<Job> jobs;
  JobIds ids;
  if (r.lines) {
    const BatchLines lines(*r.lines);
    ids = JobIds(lines.size(), !o.id);
    jobs.reserve(lines.size());
    std::set<std::string, std::less<>> given;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string fresh = o.id ? std::string() : ids.generated(i);
      bool explicit_id = false;
      Job job = batch_job(lines, i, o, d, now, o.id ? nullptr : &fresh, &explicit_id);
      if (!job.after().empty()) {
        bad_usage(
            fmt::format("line {}: 'after' cannot be used with --cluster: dependencies are between jobs of one spool",
                        lines.number(i)));
      }
      if (explicit_id) {
        if (!given.insert(job.id()).second) {
          bad_usage(fmt::format("line {}: id '{}' is given twice", lines.number(i), job.id()));
        }
        ids.give(i, job.id());
      }
      jobs.push_back(std::move(job));
    }
  } else {
    Job job = make_job(r.base, o, d, now);
    if (!job.after().empty()) {
      bad_usage("'after' cannot be used with --cluster: dependencies are between jobs of one spool");
    }
    ids = JobIds(1, false);
    ids.give(0, job.id());
    jobs.push_back(std::move(job));
  }
  if (jobs.empty()) {
    return ids;
  }
  // Published asynchronously, many in flight; JetStream's acknowledgement of each says
  // it is stored (replicated), and a repeated message id is dropped by the server.
  struct Failures {
    std::mutex m;
    std::size_t count = 0;
    std::string first;
  } failures;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 4096;
  jo.PublishAsync.ErrHandler = [](jsCtx*, jsPubAckErr* pae, void* closure) {
    auto* f = static_cast<Failures*>(closure);
    const std::lock_guard<std::mutex> g(f->m);
    if (f->count++ == 0) {
      f->first = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
    }
  };
  jo.PublishAsync.ErrHandlerClosure = &failures;
  Link link(c, &jo);
  for (const Job& job : jobs) {
    const std::string body = job.json().dump();
    const std::string id = job.id();
    const std::string subject = subject_of(job);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.c_str();
    po.ExpectStream = c.stream.c_str();
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    if (s == NATS_OK) {
      s = js_PublishMsgAsync(link.js(), &msg, &po);
    }
    if (msg) {
      natsMsg_Destroy(msg);
    }
    if (s != NATS_OK) {
      fail(fmt::format("cannot publish job {} to the stream {}: {} (jobs already published stay; publishing them "
                       "again is safe: the server drops a repeated id)",
                       id, c.stream, nats_text(s)));
    }
  }
  jsPubOptions done;
  jsPubOptions_Init(&done);
  done.MaxWait = k_publish_timeout_ms;
  const natsStatus s = js_PublishAsyncComplete(link.js(), &done);
  if (s != NATS_OK || failures.count > 0) {
    fail(fmt::format("{} of {} jobs were not stored by the stream {}: {} (publishing them again is safe: the server "
                     "drops a repeated id)",
                     failures.count > 0 ? failures.count : jobs.size(), jobs.size(), c.stream,
                     failures.count > 0 ? failures.first : nats_text(s)));
  }
  return ids;
}

void close_library() {
  nats_CloseAndWait(2000);
}

} // namespace queuectl::cluster
