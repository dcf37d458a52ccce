#include "queuectl/intake.hpp"

#include "queuectl/cluster.hpp"
#include "queuectl/error.hpp"
#include "queuectl/json_text.hpp"
#include "queuectl/nats_link.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/say.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/watch.hpp"

#include <fmt/format.h>

#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace queuectl::cluster {

namespace {

constexpr int k_long_poll_ms = 1000;        // one pull request waits this long for a job
constexpr Micros k_idle_look = 200'000;     // no idle worker: look again this often at most
constexpr Micros k_max_backoff = 5'000'000; // between tries while the cluster is away
constexpr int k_report_wait_ms = 5000;      // for the bucket to store a batch of records
constexpr Micros k_look_again = 5'000'000;  // every job taken is looked at again this often
constexpr const char* k_reported_file = "intake.reported";
constexpr Micros k_reported_margin = 2'000'000; // file times and the clock may differ a little

void log_line(std::string_view line) {
  say(fmt::format("intake: {}", line));
}

// Says a trouble once, not at every retry, and its end.
class Trouble {
public:
  void say(const std::string& what) {
    if (what != m_last) {
      log_line(what + "; trying again");
      m_last = what;
    }
    m_backoff = std::min(k_max_backoff, m_backoff == 0 ? 500'000 : m_backoff * 2);
  }
  void over(std::string_view back) {
    if (!m_last.empty()) {
      log_line(back);
      m_last.clear();
    }
    m_backoff = 0;
  }
  Micros backoff() const { return m_backoff; }

private:
  std::string m_last;
  Micros m_backoff = 0;
};

// The ids whose records the bucket did not store.
struct Failed {
  std::mutex m;
  std::set<std::string> ids;
};
Failed g_failed; // NOLINT(cppcoreguidelines-avoid-non-const-global-variables): see Intake::m_failed

class Intake {
public:
  explicit Intake(const std::filesystem::path& root)
      : m_spool(Spool::open_existing(root)), m_host(host_name(m_spool)), m_supervisor(sys::parent_pid()) {
    const auto c = m_spool.load_config().cluster();
    if (!c) {
      fail("the spool has joined no cluster");
    }
    m_settings = *c;
  }

  int run();

private:
  // The taker (the main thread): jobs from the stream into pending/.
  void take_loop();
  bool subscribe();
  int capacity();
  void take(std::vector<natsMsg*>& msgs);
  std::string id_for(natsMsg* msg, const Json& body) const;
  void stop_at(Micros deadline);
  void stop();
  void give_back_buffered();
  void mark_all_dirty();

  // The reporter (a thread): the state changes of the jobs taken, to the bucket.
  void report_loop(int signal_fd);
  void report();
  void adopt_taken_jobs();
  void note_reported(Micros through);

  Spool m_spool;
  std::string m_host;
  pid_t m_supervisor;
  ClusterSettings m_settings;
  std::unique_ptr<Link> m_link;
  Owned<natsSubscription, natsSubscription_Destroy> m_sub;

  std::mutex m_mutex;
  std::condition_variable m_wake;         // the taker: a worker may be idle, or stop
  std::uint64_t m_wakes = 0;              // counts the reporter's calls to wake it
  std::map<std::string, JobState> m_mine; // the jobs taken and not final -> where last seen
  std::set<std::string> m_dirty;          // of those, the ones whose record is out of date
  sys::EventFd m_report_now;              // the reporter: m_dirty has new ids
  // The reporter's JetStream context: its records go out many at a time, and those the
  // bucket refused are named to m_failed (which libnats's threads may write to until the
  // library is closed at exit: it lives as long as the process).
  Failed& m_failed = g_failed;
  Owned<jsCtx, jsCtx_Destroy> m_report_js;
  std::atomic<bool> m_stop{false};
  Trouble m_take_trouble;
  Micros m_reported_at = 0; // what workers/intake.reported says
};

// Both threads stop: the taker at its next look, the reporter at its next wake.
void Intake::stop() {
  {
    const std::lock_guard<std::mutex> g(m_mutex);
    m_stop = true;
  }
  m_wake.notify_all();
  m_report_now.ring();
}

// Returns 0 after a stop asked for, 1 after an error (the supervisor starts a new intake).
int Intake::run() {
  m_link = std::make_unique<Link>(m_settings, [](const std::string& s) { log_line(s); });
  sys::SignalFd signals({SIGTERM, SIGINT, SIGHUP});
  std::atomic<int> rc{0};
  std::thread reporter([&] {
    try {
      report_loop(signals.fd());
    } catch (const std::exception& e) {
      log_line(fmt::format("error: {}", e.what()));
      rc = 1;
    }
    stop();
  });
  log_line(
      fmt::format("taking jobs from the stream {} on {} as {}", m_settings.stream, servers_text(m_settings), m_host));
  try {
    take_loop();
  } catch (const std::exception& e) {
    log_line(fmt::format("error: {}", e.what()));
    rc = 1;
  }
  stop();
  reporter.join();
  return rc;
}

void Intake::stop_at(Micros deadline) {
  std::unique_lock<std::mutex> g(m_mutex);
  m_wake.wait_for(g, std::chrono::microseconds(std::max<Micros>(0, deadline - monotonic_micros())),
                  [&] { return m_stop.load(); });
}

// Binds to the shared durable consumer, creating it if no host has yet. The library
// must not have created it: it would delete it when the subscription ends.
bool Intake::subscribe() {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsConsumerInfo* ci = nullptr;
  natsStatus s = js_GetConsumerInfo(&ci, m_link->js(), m_settings.stream.c_str(), k_intake_consumer, nullptr, &jerr);
  if (s == NATS_NOT_FOUND) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = k_intake_consumer;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = static_cast<int64_t>(k_ack_wait_seconds) * 1'000'000'000;
    cc.MaxDeliver = -1;
    const std::string filter = std::string(k_jobs_subject) + ">";
    cc.FilterSubject = filter.c_str();
    s = js_AddConsumer(&ci, m_link->js(), m_settings.stream.c_str(), &cc, nullptr, &jerr);
    if (s == NATS_ERR && jerr == JSConsumerNameExistErr) {
      s = js_GetConsumerInfo(&ci, m_link->js(), m_settings.stream.c_str(), k_intake_consumer, nullptr, &jerr);
    }
  }
  if (ci) {
    jsConsumerInfo_Destroy(ci);
  }
  if (s == NATS_OK) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = m_settings.stream.c_str();
    so.Consumer = k_intake_consumer;
    s = js_PullSubscribe(&m_sub.p, m_link->js(), nullptr, k_intake_consumer, nullptr, &so, &jerr);
  }
  if (s != NATS_OK) {
    m_take_trouble.say(fmt::format("cannot use the consumer {} of the stream {}: {}", k_intake_consumer,
                                   m_settings.stream, nats_text(s)));
    return false;
  }
  return true;
}

// How many jobs to take: the supervisor's idle workers, less the jobs taken that no
// worker has claimed yet, and less those claimed that no worker's record shows yet (a
// worker records its job a moment after its claim: meanwhile it looks idle).
int Intake::capacity() {
  int idle = 0;
  std::set<std::string, std::less<>> running;
  for (const WorkerInfo& w : live_records(m_spool)) {
    if (w.kind == RecordKind::worker && w.supervisor == m_supervisor) {
      if (!w.job || w.job->empty()) {
        ++idle;
      } else {
        running.insert(*w.job);
      }
    }
  }
  const std::lock_guard<std::mutex> g(m_mutex);
  for (const auto& [id, state] : m_mine) {
    if (state == JobState::pending || (state == JobState::processing && !running.count(id))) {
      --idle;
    }
  }
  return idle;
}

// Messages that reached the subscription after their pull request had expired wait in
// its buffer, delivered and unacknowledged: with no idle worker for them they go back to
// the stream at once (a negative acknowledgement), so another host takes them now rather
// than in 30 s, and this one never holds them.
void Intake::give_back_buffered() {
  int buffered = 0;
  if (!m_sub.p || natsSubscription_GetPending(m_sub.p, &buffered, nullptr) != NATS_OK || buffered == 0) {
    return;
  }
  jsFetchRequest req;
  jsFetchRequest_Init(&req);
  req.Batch = buffered;
  req.NoWait = true;
  req.Expires = static_cast<int64_t>(k_long_poll_ms) * 1'000'000;
  natsMsgList list{};
  if (natsSubscription_FetchRequest(&list, m_sub.p, &req) == NATS_OK) {
    for (int i = 0; i < list.Count; ++i) {
      natsMsg_Nak(list.Msgs[i], nullptr);
    }
  }
  natsMsgList_Destroy(&list);
}

void Intake::take_loop() {
  while (!m_stop) {
    if (!m_sub.p && !subscribe()) {
      stop_at(monotonic_micros() + m_take_trouble.backoff());
      continue;
    }
    std::uint64_t seen = 0;
    {
      const std::lock_guard<std::mutex> g(m_mutex);
      seen = m_wakes; // read before we look: a wake while we look is not lost
    }
    const int want = capacity();
    if (want <= 0 || natsConnection_Status(m_link->nc()) != NATS_CONN_STATUS_CONNECTED) {
      // A worker that finishes a job wakes us through the reporter. (No pull request
      // is sent while the connection is down: libnats would keep it and send it later,
      // for jobs we may no longer have room for.)
      give_back_buffered();
      std::unique_lock<std::mutex> g(m_mutex);
      m_wake.wait_for(g, std::chrono::microseconds(k_idle_look), [&] { return m_stop || m_wakes != seen; });
      continue;
    }
    // A long poll for one job, then, without waiting, as many more as there are idle
    // workers: a job published while we wait starts at once.
    natsMsgList first{};
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = natsSubscription_Fetch(&first, m_sub.p, 1, k_long_poll_ms, &jerr);
    if (s == NATS_TIMEOUT || (s == NATS_OK && first.Count == 0)) {
      natsMsgList_Destroy(&first);
      m_take_trouble.over("taking jobs again");
      continue;
    }
    if (s != NATS_OK) {
      natsMsgList_Destroy(&first);
      m_take_trouble.say(fmt::format("cannot take jobs from the stream {}: {}", m_settings.stream, nats_text(s)));
      // Bound again after the pause: the consumer may have gone with its stream.
      natsSubscription_Destroy(std::exchange(m_sub.p, nullptr));
      stop_at(monotonic_micros() + m_take_trouble.backoff());
      continue;
    }
    m_take_trouble.over("taking jobs again");
    std::vector<natsMsg*> msgs;
    for (int i = 0; i < first.Count; ++i) {
      msgs.push_back(std::exchange(first.Msgs[i], nullptr));
    }
    natsMsgList_Destroy(&first);
    if (want > 1) {
      jsFetchRequest req;
      jsFetchRequest_Init(&req);
      req.Batch = want - 1;
      req.NoWait = true;
      req.Expires = static_cast<int64_t>(k_long_poll_ms) * 1'000'000; // for the server's "no more" answer
      natsMsgList more{};
      if (natsSubscription_FetchRequest(&more, m_sub.p, &req) == NATS_OK) {
        for (int i = 0; i < more.Count; ++i) {
          msgs.push_back(std::exchange(more.Msgs[i], nullptr));
        }
      }
      natsMsgList_Destroy(&more);
    }
    take(msgs);
  }
}

// The job's id: its own, else the message id, else one made of the message's time and
// stream sequence (the same at every redelivery of the message).
std::string Intake::id_for(natsMsg* msg, const Json& body) const {
  if (body.is_object()) {
    if (const auto it = body.find("id"); it != body.end() && it->is_string() && valid_id(it->get<std::string>())) {
      return it->get<std::string>();
    }
  }
  const char* msg_id = nullptr;
  if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &msg_id) == NATS_OK && msg_id && valid_id(msg_id)) {
    return msg_id;
  }
  jsMsgMetaData* meta = nullptr;
  std::string id;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
    id = fmt::format("{:013x}-s{}", meta->Timestamp / 1000, meta->Sequence.Stream);
    jsMsgMetaData_Destroy(meta);
  }
  return id;
}

// Writes each job into pending/, makes them durable (one fsync of pending/), and only
// then acknowledges them. A crash before the acknowledgements leaves the jobs here and
// lets the stream offer them again in 30 s: here they are skipped as redeliveries;
// another host would run them a second time (the documented window).
void Intake::take(std::vector<natsMsg*>& msgs) {
  std::vector<natsMsg*> to_ack;
  std::vector<std::string> taken;
  bool io_error = false;
  for (natsMsg* msg : msgs) {
    const std::string_view data(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    std::string why;
    Json body = parse_json_text(data, why).value_or(Json());
    const std::string id = id_for(msg, body);
    if (id.empty()) {
      log_line(fmt::format("a message on {} has no metadata; left to the stream", natsMsg_GetSubject(msg)));
      continue;
    }
    std::string text(data);
    if (body.is_object()) {
      // The file says which cluster and host it came through: the mark by which a
      // restarted intake knows its jobs (other programs' fields are kept in every state).
      body["id"] = id;
      body["cluster"] = Json{{"stream", m_settings.stream}, {"host", m_host}};
      text = body.dump();
    }
    if (m_spool.id_taken(id)) {
      log_line(fmt::format("job {} is in this spool already (a redelivery): acknowledged, not taken again", id));
      to_ack.push_back(msg);
      continue;
    }
    try {
      const std::string temp = m_spool.temp_name("intake");
      (void)m_spool.tmp().create(temp, text, true, m_spool.file_mode());
      if (!m_spool.tmp().move_noreplace(temp, m_spool.dir(JobState::pending), job_file(id))) {
        m_spool.tmp().remove_quietly(temp);
        log_line(fmt::format("job {} is in this spool already (a redelivery): acknowledged, not taken again", id));
      } else {
        taken.push_back(id);
      }
      to_ack.push_back(msg);
    } catch (const Error& e) {
      log_line(fmt::format("cannot write job {} into pending/: {}; the stream offers it again in {} s", id, e.what(),
                           k_ack_wait_seconds));
      io_error = true;
      break;
    }
  }
  if (!taken.empty()) {
    try {
      m_spool.sync_dir(JobState::pending);
    } catch (const Error& e) {
      // The jobs are in pending/ and run here: acknowledged all the same, so that no
      // other host runs them too; only a power cut now could lose them.
      log_line(fmt::format("cannot make pending/ durable: {}", e.what()));
    }
    const std::lock_guard<std::mutex> g(m_mutex);
    for (const std::string& id : taken) {
      m_mine[id] = JobState::pending;
      m_dirty.insert(id);
    }
  }
  if (!taken.empty()) {
    m_report_now.ring(); // a job may have moved on before it was ours: its events were not heard
  }
  // The acknowledgements go out in order on one connection; waiting for the last one's
  // answer is enough to know the others reached the server.
  for (std::size_t i = 0; i < to_ack.size(); ++i) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (i + 1 < to_ack.size()) {
      natsMsg_Ack(to_ack[i], nullptr);
    } else if (const natsStatus s = natsMsg_AckSync(to_ack[i], nullptr, &jerr); s != NATS_OK) {
      log_line(fmt::format("the stream did not confirm the acknowledgement of {} jobs ({}): it may offer them "
                           "again, and this spool skips them",
                           to_ack.size(), nats_text(s)));
    }
  }
  for (natsMsg* msg : msgs) {
    natsMsg_Destroy(msg);
  }
  msgs.clear();
  if (io_error) {
    stop_at(monotonic_micros() + 5'000'000);
  }
}

// After a restart: the jobs in this spool's waiting and running states that came through
// the cluster are ours again (their files carry the mark), and so are those that
// finished since the last time every change had been reported: their last records may
// not have gone out. The workers may have run a job to its end before we look.
void Intake::adopt_taken_jobs() {
  const auto text = m_spool.workers().read_file(k_reported_file);
  const Micros since = text ? std::strtoll(text->c_str(), nullptr, 10) - k_reported_margin : 0;
  for (const JobState s : k_all_states) {
    const bool finished = s == JobState::completed || s == JobState::dead;
    if (finished && since <= 0) {
      continue; // no intake has run here before
    }
    std::vector<std::string> names;
    m_spool.for_each_job(s, [&](std::string_view stem) { names.emplace_back(stem); });
    for (const std::string& stem : names) {
      if (!valid_id(stem)) {
        continue;
      }
      if (finished) {
        const auto st = m_spool.stat_job(s, stem);
        if (!st || sys::ctime_micros(*st) < since) {
          continue;
        }
      }
      const auto job = m_spool.read_listed(s, job_file(stem));
      if (!job || !job->json().contains("cluster")) {
        continue;
      }
      const std::lock_guard<std::mutex> g(m_mutex);
      m_mine[stem] = s;
      m_dirty.insert(stem);
    }
  }
  if (!text) {
    note_reported(now_micros());
  }
}

// workers/intake.reported: a time before which every state change of the jobs taken
// has been published (written at most every 5 s; a later one only saves work).
void Intake::note_reported(Micros through) {
  if (through - m_reported_at < 5'000'000) {
    return;
  }
  try {
    m_spool.workers().write_atomic(k_reported_file, fmt::format("{}\n", through), m_spool.file_mode());
    m_reported_at = through;
  } catch (const Error& e) {
    log_line(fmt::format("cannot note what has been reported: {}", e.what()));
  }
}

void Intake::mark_all_dirty() {
  const std::lock_guard<std::mutex> g(m_mutex);
  for (const auto& [id, state] : m_mine) {
    m_dirty.insert(id);
  }
}

void Intake::report_loop(int signal_fd) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.ErrHandler = [](jsCtx*, jsPubAckErr* pae, void* closure) {
    auto* f = static_cast<Failed*>(closure);
    const std::string subject = natsMsg_GetSubject(pae->Msg);
    const std::lock_guard<std::mutex> g(f->m);
    f->ids.insert(subject.substr(std::strlen("$KV.") + std::strlen(k_jobs_bucket) + 1)); // ids may hold dots
  };
  jo.PublishAsync.ErrHandlerClosure = &m_failed;
  if (const natsStatus s = natsConnection_JetStream(&m_report_js.p, m_link->nc(), &jo); s != NATS_OK) {
    fail(fmt::format("cannot use JetStream: {}", nats_text(s)));
  }
  std::unique_ptr<Watch> watch = Watch::open();
  std::map<int, JobState> dirs;
  for (const JobState s : k_all_states) {
    // Jobs arrive by rename; a quarantined drop-in's record in dead/ is written in place.
    dirs[watch->add(m_spool.path_of(s, ""), IN_MOVED_TO | IN_CLOSE_WRITE)] = s;
  }
  const int wd_workers = watch->add(m_spool.workers().path(), IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO);
  adopt_taken_jobs();
  Micros next_look = monotonic_micros() + k_look_again;
  for (;;) {
    const Micros look = now_micros(); // every change before this is drained below
    bool wake = false;
    bool overflow = false;
    watch->drain([&](int wd, std::uint32_t mask, std::string_view name) {
      if (mask & IN_Q_OVERFLOW) {
        overflow = true; // events were lost: look at every job
        return;
      }
      if (wd == wd_workers) {
        wake = true; // a worker's job changed: it may be idle
        return;
      }
      const auto id = id_of_file(name);
      if (!id) {
        return;
      }
      wake = wake || dirs[wd] != JobState::pending;
      const std::lock_guard<std::mutex> g(m_mutex);
      if (const auto it = m_mine.find(*id); it != m_mine.end()) {
        m_dirty.insert(*id);
        it->second = dirs[wd];
      }
    });
    if (overflow) {
      mark_all_dirty();
    }
    if (wake || overflow) {
      {
        const std::lock_guard<std::mutex> g(m_mutex);
        ++m_wakes;
      }
      m_wake.notify_all();
    }
    report();
    bool again = false;
    {
      const std::lock_guard<std::mutex> g(m_mutex);
      again = !m_dirty.empty(); // the bucket was away: try again in a second
    }
    if (!again) {
      note_reported(look);
    }
    pollfd fds[] = {{watch->fd(), POLLIN, 0}, {signal_fd, POLLIN, 0}, {m_report_now.fd(), POLLIN, 0}};
    sys::poll(
        fds, 3,
        static_cast<int>(std::clamp<Micros>(next_look - monotonic_micros(), 0, again ? 1'000'000 : 5'000'000) / 1000));
    if (monotonic_micros() >= next_look) {
      // Every 5 s, every job taken is looked at again, should an event have been missed.
      next_look = monotonic_micros() + k_look_again;
      mark_all_dirty();
    }
    if (fds[2].revents) {
      m_report_now.clear();
    }
    if (fds[1].revents || m_stop) {
      if (fds[1].revents) {
        log_line("stopping");
      }
      stop();
      const Micros last = now_micros();
      report(); // the last changes, if the servers take them now
      const std::lock_guard<std::mutex> g(m_mutex);
      if (m_dirty.empty()) {
        m_reported_at = 0;
        note_reported(last);
      }
      return;
    }
  }
}

// Publishes the current record of each job whose state changed: to the bucket (through
// its stream, many in flight) and to queuectl.events.<id>. A record the bucket did not
// store is published again later.
void Intake::report() {
  std::set<std::string> dirty;
  {
    const std::lock_guard<std::mutex> g(m_mutex);
    dirty.swap(m_dirty);
  }
  if (dirty.empty()) {
    return;
  }
  Failed& failed = m_failed;
  jsCtx* js = m_report_js.p;
  std::map<std::string, bool> finals; // id -> final
  const std::string kv_prefix = fmt::format("$KV.{}.", k_jobs_bucket);
  for (const std::string& id : dirty) {
    const auto state = m_spool.locate(id);
    if (!state) {
      finals[id] = true; // purged, or moved on: nothing more to say
      continue;
    }
    const auto job = m_spool.read_listed(*state, job_file(id));
    if (!job) {
      const std::lock_guard<std::mutex> g(m_mutex);
      m_dirty.insert(id); // it moved while we looked: next time
      continue;
    }
    const std::string body = record_of(*job, m_host).dump();
    const std::string key_subject = kv_prefix + id;
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, key_subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    if (s == NATS_OK) {
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = k_report_wait_ms; // an answer lost with a connection is a failure, not a wait forever
      s = js_PublishMsgAsync(js, &msg, &po);
    }
    if (msg) {
      natsMsg_Destroy(msg);
    }
    if (s == NATS_OK) {
      const std::string event = k_events_subject + id;
      natsConnection_Publish(m_link->nc(), event.c_str(), body.data(), static_cast<int>(body.size()));
      finals[id] = *state == JobState::completed || *state == JobState::dead;
    } else {
      const std::lock_guard<std::mutex> g(failed.m);
      failed.ids.insert(id);
    }
    {
      const std::lock_guard<std::mutex> g(m_mutex);
      if (const auto it = m_mine.find(id); it != m_mine.end()) {
        it->second = *state;
      }
    }
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = k_report_wait_ms;
  const bool all_stored = js_PublishAsyncComplete(js, &po) == NATS_OK;
  const std::lock_guard<std::mutex> g(m_mutex);
  const std::lock_guard<std::mutex> f(failed.m);
  std::set<std::string> failed_ids;
  failed_ids.swap(failed.ids);
  for (const auto& [id, final] : finals) {
    if (!all_stored || failed_ids.count(id)) {
      m_dirty.insert(id);
    } else if (final) {
      m_mine.erase(id);
    }
  }
  m_dirty.insert(failed_ids.begin(), failed_ids.end());
}

} // namespace

int run_intake(const std::filesystem::path& root) {
  sys::block_signals(sys::signal_set({SIGTERM, SIGINT, SIGHUP})); // before the threads exist
  try {
    Intake intake(root);
    return intake.run();
  } catch (const std::exception& e) {
    log_line(fmt::format("error: {}", e.what()));
    return 1;
  }
}

} // namespace queuectl::cluster
