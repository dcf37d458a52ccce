#include "queuectl/cluster.hpp"

#include "queuectl/error.hpp"
#include "queuectl/json_text.hpp"
#include "queuectl/nats_link.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>

namespace queuectl::cluster {

namespace {

constexpr int k_publish_timeout_ms = 30000;

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

std::string host_name(const Spool& spool) {
  char name[256] = "";
  if (::gethostname(name, sizeof name - 1) != 0 || !*name) {
    std::snprintf(name, sizeof name, "localhost");
  }
  return fmt::format("{}:{}", name, spool.root().string());
}

Json record_of(const Job& job, const std::string& host) {
  Json r = Json::object();
  const Json& j = job.json();
  for (const char* k : {"id", "state"}) {
    if (const auto it = j.find(k); it != j.end()) {
      r[k] = *it;
    }
  }
  r["host"] = host;
  for (const char* k : {"queue", "command", "attempts", "max_retries", "exit_code", "last_error", "created_at",
                        "updated_at", "next_run_at"}) {
    if (const auto it = j.find(k); it != j.end()) {
      r[k] = *it;
    }
  }
  if (!r.contains("queue")) {
    r["queue"] = k_default_queue;
  }
  return r;
}

bool final_record(const Json& record) {
  const std::string state = record.value("state", "");
  return state == state_name(JobState::completed) || state == state_name(JobState::dead);
}

namespace {

// The record of `id` in the bucket; nullopt when there is none.
std::optional<Json> get_record(kvStore* kv, const std::string& id) {
  kvEntry* e = nullptr;
  if (kvStore_Get(&e, kv, id.c_str()) != NATS_OK) {
    return std::nullopt;
  }
  std::string why;
  auto rec = parse_json_text(kvEntry_ValueString(e), why);
  kvEntry_Destroy(e);
  if (!rec || !rec->is_object()) {
    return std::nullopt;
  }
  return rec;
}

// The bucket of the records. A cluster that has just started elects the bucket's leader
// first: a request that times out or finds no responder is tried again, for up to 10 s.
kvStore* open_bucket(const Link& link) {
  const Micros give_up = monotonic_micros() + 10'000'000;
  for (;;) {
    kvStore* kv = nullptr;
    const natsStatus s = js_KeyValue(&kv, link.js(), k_jobs_bucket);
    if (s == NATS_OK) {
      return kv;
    }
    if ((s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS) || monotonic_micros() >= give_up) {
      fail(fmt::format("cannot open the key-value bucket {}: {} (has a host run 'queuectl cluster join'?)",
                       k_jobs_bucket, nats_text(s)));
    }
    sys::sleep_for(500'000);
  }
}

} // namespace

Json show(const Spool& spool, const std::string& id) {
  const ClusterSettings c = joined(spool);
  Link link(c);
  Owned<kvStore, kvStore_Destroy> kv;
  kv.p = open_bucket(link);
  auto rec = get_record(kv.p, id);
  if (!rec) {
    fail(fmt::format("no host has taken job {}: it is unknown, or still waits in the stream {}", id, c.stream));
  }
  return *rec;
}

int wait(const Spool& spool, const std::vector<std::string>& ids, std::optional<double> timeout,
         std::vector<std::string>* unfinished) {
  const ClusterSettings c = joined(spool);
  Link link(c);
  Owned<kvStore, kvStore_Destroy> kv;
  kv.p = open_bucket(link);
  // The events are subscribed to before the records are read: a change in between is
  // still heard. libnats may call the handler until the library is closed at the
  // process's exit, so what it writes to lives as long as the process.
  struct Heard {
    std::mutex m;
    std::condition_variable cv;
    std::map<std::string, Json> records;
  };
  static Heard heard;
  std::vector<std::unique_ptr<Owned<natsSubscription, natsSubscription_Destroy>>> subs;
  for (const std::string& id : ids) {
    auto sub = std::make_unique<Owned<natsSubscription, natsSubscription_Destroy>>();
    const std::string subject = k_events_subject + id;
    const natsStatus s = natsConnection_Subscribe(
        &sub->p, link.nc(), subject.c_str(),
        [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
          auto* h = static_cast<Heard*>(closure);
          std::string why;
          const std::string_view data(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
          if (auto rec = parse_json_text(data, why); rec && rec->is_object() && rec->contains("id")) {
            const std::lock_guard<std::mutex> g(h->m);
            h->records[rec->value("id", "")] = *rec;
            h->cv.notify_all();
          }
          natsMsg_Destroy(msg);
        },
        &heard);
    if (s != NATS_OK) {
      fail(fmt::format("cannot subscribe to {}: {}", subject, nats_text(s)));
    }
    subs.push_back(std::move(sub));
  }
  if (const natsStatus s = natsConnection_Flush(link.nc()); s != NATS_OK) {
    fail(fmt::format("cannot reach the NATS servers {}: {}", servers_text(c), nats_text(s)));
  }
  for (const std::string& id : ids) {
    if (auto rec = get_record(kv.p, id)) {
      const std::lock_guard<std::mutex> g(heard.m);
      heard.records.try_emplace(id, std::move(*rec)); // an event heard already is newer
    }
  }
  const auto all_final = [&] {
    return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
      const auto it = heard.records.find(id);
      return it != heard.records.end() && final_record(it->second);
    });
  };
  // The events are what wakes us. An event published while the connection was down (a
  // server restarted) is lost, so the records of the jobs not finished are read again
  // every few seconds as well.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                             std::chrono::duration<double>(std::min(timeout.value_or(1e9), 1e9)));
  std::unique_lock<std::mutex> g(heard.m);
  while (!all_final()) {
    const auto next = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(3));
    if (heard.cv.wait_until(g, next, all_final)) {
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      for (const std::string& id : ids) {
        const auto it = heard.records.find(id);
        if (it == heard.records.end() || !final_record(it->second)) {
          unfinished->push_back(id);
        }
      }
      return 124;
    }
    if (natsConnection_IsClosed(link.nc())) {
      fail(fmt::format("lost the NATS servers {} while waiting (the jobs go on; wait again once they are back)",
                       servers_text(c)));
    }
    g.unlock();
    for (const std::string& id : ids) {
      if (auto rec = get_record(kv.p, id); rec && final_record(*rec)) {
        const std::lock_guard<std::mutex> h(heard.m);
        heard.records[id] = std::move(*rec);
      }
    }
    g.lock();
  }
  for (const std::string& id : ids) {
    const Json& r = heard.records[id];
    if (r.value("state", "") == state_name(JobState::dead)) {
      const auto code = r.find("exit_code");
      return code != r.end() && code->is_number_integer() && code->get<int>() >= 1 && code->get<int>() <= 255
                 ? code->get<int>()
                 : 1;
    }
  }
  return 0;
}

void close_library() {
  nats_CloseAndWait(2000);
}

} // namespace queuectl::cluster
