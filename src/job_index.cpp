#include "queuectl/job_index.hpp"

#include "queuectl/error.hpp"
#include "queuectl/parallel.hpp"
#include "queuectl/pending_index.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace queuectl {

bool runs_before(const IndexEntry& a, const IndexEntry& b) {
  if (a.priority != b.priority) {
    return a.priority > b.priority;
  }
  if (a.created != b.created) {
    return a.created < b.created;
  }
  if (a.id != b.id) {
    return a.id < b.id;
  }
  return a.from < b.from;
}

bool JobIndex::RunsBefore::operator()(const IndexEntry& a, const IndexEntry& b) const {
  return runs_before(a, b);
}

bool JobIndex::DueBefore::operator()(const IndexEntry& a, const IndexEntry& b) const {
  if (a.due != b.due) {
    return a.due < b.due;
  }
  return runs_before(a, b);
}

void JobIndex::forget(const IndexEntry& e) {
  if (const auto it = m_known.find(e.id); it != m_known.end() && (it->second &= ~bit(e.from)) == 0) {
    m_known.erase(it);
  }
}

namespace {

// Inserts `e`; over `capacity`, takes the last one out and returns it. `kept`: whether
// `e` stayed.
template <class Set> std::optional<IndexEntry> insert_capped(Set& set, IndexEntry e, std::size_t capacity, bool& kept) {
  const auto at = set.insert(std::move(e)).first;
  kept = true;
  if (set.size() <= capacity) {
    return std::nullopt;
  }
  const auto last = std::prev(set.end());
  kept = last != at;
  return std::move(set.extract(last).value());
}

} // namespace

// Into m_ready, unless it runs after the cut; over capacity the last one is left out and
// the cut moves up to it.
bool JobIndex::keep_ready(IndexEntry e) {
  if (m_ready_cut && !runs_before(e, *m_ready_cut)) {
    forget(e);
    return false;
  }
  bool kept = false;
  if (auto out = insert_capped(m_ready, std::move(e), m_capacity, kept)) {
    forget(*out);
    m_ready_cut = std::move(*out);
  }
  return kept;
}

bool JobIndex::add(IndexEntry e) {
  if (left_out(e)) { // before anything is looked up: in a scan of a million jobs, most are
    return false;
  }
  unsigned& from = m_known[e.id];
  if ((from & bit(e.from)) != 0) {
    return false;
  }
  from |= bit(e.from);
  if (e.due <= 0) {
    return keep_ready(std::move(e));
  }
  bool kept = false;
  if (auto out = insert_capped(m_timers, std::move(e), m_capacity, kept)) {
    forget(*out);
    m_timers_cut = out->due;
  }
  return kept;
}

std::optional<IndexEntry> JobIndex::pop_ready(Micros now, const std::function<bool(const IndexEntry&)>& can_start) {
  while (!m_timers.empty() && m_timers.begin()->due <= now) {
    keep_ready(std::move(m_timers.extract(m_timers.begin()).value()));
  }
  auto it = m_ready.begin();
  while (it != m_ready.end() && can_start && !can_start(*it)) {
    ++it;
  }
  if (it == m_ready.end()) {
    return std::nullopt;
  }
  IndexEntry e = std::move(m_ready.extract(it).value());
  forget(e);
  return e;
}

std::optional<Micros> JobIndex::next_due() const {
  std::optional<Micros> t = m_timers_cut;
  if (!m_timers.empty() && (!t || m_timers.begin()->due < *t)) {
    t = m_timers.begin()->due;
  }
  return t;
}

bool JobIndex::needs_scan(Micros now) const {
  return (m_ready.empty() && m_ready_cut && !(m_timers.begin() != m_timers.end() && m_timers.begin()->due <= now)) ||
         (m_timers_cut && *m_timers_cut <= now);
}

void JobIndex::merge(JobIndex&& other) {
  while (!other.m_ready.empty()) {
    add(std::move(other.m_ready.extract(other.m_ready.begin()).value()));
  }
  while (!other.m_timers.empty()) {
    add(std::move(other.m_timers.extract(other.m_timers.begin()).value()));
  }
  // What either left out is left out of both: keep only what runs before both cuts.
  if (other.m_ready_cut && (!m_ready_cut || runs_before(*other.m_ready_cut, *m_ready_cut))) {
    m_ready_cut = std::move(other.m_ready_cut);
    remove_if([&](const IndexEntry& e) { return e.due <= 0 && !runs_before(e, *m_ready_cut); });
  }
  if (other.m_timers_cut && (!m_timers_cut || *other.m_timers_cut < *m_timers_cut)) {
    m_timers_cut = other.m_timers_cut;
    remove_if([&](const IndexEntry& e) { return e.due > 0 && e.due >= *m_timers_cut; });
  }
  other.clear();
}

void JobIndex::clear() {
  m_ready.clear();
  m_timers.clear();
  m_known.clear();
  m_ready_cut.reset();
  m_timers_cut.reset();
}

void JobIndex::remove_if(const std::function<bool(const IndexEntry&)>& pred) {
  const auto sweep = [&](auto& set) {
    for (auto it = set.begin(); it != set.end();) {
      if (pred(*it)) {
        forget(*it);
        it = set.erase(it);
      } else {
        ++it;
      }
    }
  };
  sweep(m_ready);
  sweep(m_timers);
}

namespace {

constexpr std::string_view k_saved = "queuectl-index 2\n";

void save_entry(std::string& out, char tag, const IndexEntry& e) {
  if (e.id.find('\n') != std::string::npos) {
    return; // a drop-in named so: left for the next scan (its claim quarantines it)
  }
  fmt::format_to(std::back_inserter(out), "{} {} {} {} {} {} {} {}\n", tag, e.from == JobState::failed ? 'F' : 'P',
                 e.priority, e.created, e.due, e.waits ? 1 : 0, e.queue.empty() ? "+" : e.queue, e.id);
}

// "<tag> <P|F> <priority> <created> <due> <waits> <queue, + for default> <id>"; the id is the rest
// (a drop-in's stem may hold spaces).
bool load_entry(std::string_view line, IndexEntry& e) {
  std::string_view f[7];
  for (auto& field : f) {
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos) {
      return false;
    }
    field = line.substr(0, sp);
    line.remove_prefix(sp + 1);
  }
  if ((f[1] != "P" && f[1] != "F") || line.empty()) {
    return false;
  }
  e.from = f[1] == "F" ? JobState::failed : JobState::pending;
  e.id.assign(line);
  e.waits = f[5] == "1";
  e.queue.assign(f[6] == "+" ? std::string_view() : f[6]); // '+' is no queue name's
  return pending_index::parse_int(f[2], e.priority) && pending_index::parse_int(f[3], e.created) &&
         pending_index::parse_int(f[4], e.due);
}

} // namespace

void JobIndex::save(std::string& out) const {
  out += k_saved;
  for (const IndexEntry& e : m_ready) {
    save_entry(out, 'E', e);
  }
  for (const IndexEntry& e : m_timers) {
    save_entry(out, 'E', e);
  }
  if (m_ready_cut) {
    save_entry(out, 'C', *m_ready_cut);
  }
  if (m_timers_cut) {
    fmt::format_to(std::back_inserter(out), "T {}\n", *m_timers_cut);
  }
  out += "end\n";
}

bool JobIndex::load(std::string_view text) {
  clear();
  if (text.substr(0, k_saved.size()) != k_saved) {
    return false;
  }
  text.remove_prefix(k_saved.size());
  IndexEntry e;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      break;
    }
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (line == "end") {
      return text.empty();
    }
    std::int64_t due = 0;
    // A cut moves only up: an index smaller than the one saved has cut earlier already.
    if (line.substr(0, 2) == "T " && pending_index::parse_int(line.substr(2), due)) {
      m_timers_cut = std::min(due, m_timers_cut.value_or(due));
    } else if (line.substr(0, 2) == "C " && load_entry(line, e)) {
      if (!m_ready_cut || runs_before(e, *m_ready_cut)) {
        m_ready_cut = e;
      }
    } else if (line.substr(0, 2) == "E " && load_entry(line, e)) {
      add(e);
    } else {
      break;
    }
  }
  clear();
  return false;
}

IndexEntry index_entry_of(const Job& job, const std::string& id, JobState from, std::int64_t default_priority,
                          Micros fallback_created) {
  IndexEntry e;
  e.id = id;
  e.from = from;
  e.priority = default_priority;
  if (const auto it = job.json().find("priority"); it != job.json().end() && it->is_number_integer()) {
    e.priority = it->get<std::int64_t>();
  }
  e.created = job.time_field("created_at").value_or(fallback_created);
  if (std::string q = job.queue(); q != k_default_queue) {
    e.queue = std::move(q);
  }
  if (const auto it = job.json().find("after"); it != job.json().end() && it->is_array() && !it->empty()) {
    e.waits = true;
  }
  const auto st = job.state();
  if (from == JobState::pending && job.written_by_queuectl() && st && *st != JobState::pending) {
    return e; // a move cut short: the claim finishes it (see transition.hpp), now
  }
  e.due = job.due_at().value_or(0);
  return e;
}

IndexEntry index_entry(const std::string& id, JobState from, std::string_view content, std::int64_t default_priority,
                       Micros fallback_created) {
  std::string why;
  if (const std::optional<Job> job = Job::try_parse(content, why)) {
    return index_entry_of(*job, id, from, default_priority, fallback_created);
  }
  IndexEntry e;
  e.id = id;
  e.from = from;
  e.priority = default_priority;
  e.created = fallback_created;
  return e;
}

std::optional<IndexEntry> read_index_entry(const Spool& spool, JobState from, const std::string& id,
                                           std::int64_t default_priority) {
  struct stat st {};
  std::string content;
  try {
    const Fd fd = spool.open_job(from, id, &st);
    if (!fd) {
      return std::nullopt; // gone already
    }
    if (static_cast<std::size_t>(st.st_size) <= k_max_job_file) { // else due now: the claim quarantines it
      content = sys::read_regular(fd.get(), static_cast<std::size_t>(st.st_size), spool.path_of(from, job_file(id)));
    }
  } catch (const Error&) {
    return std::nullopt; // symlinks, FIFOs, directories: never opened through, left where they are
  }
  return index_entry(id, from, content, default_priority, sys::mtime_micros(st));
}

namespace {

// Allocates straight from mmap, so that freeing returns the memory at once, whatever the
// allocator's thresholds: a scan's table must not stay resident after it.
template <class T> struct MappedAllocator {
  using value_type = T;
  MappedAllocator() = default;
  template <class U> MappedAllocator(const MappedAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(sys::map_memory(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { sys::unmap_memory(p, n * sizeof(T)); }
  bool operator==(const MappedAllocator&) const { return true; }
  bool operator!=(const MappedAllocator&) const { return false; }
};

// The names listed in pending/, as 64-bit hashes in an open-addressed table (8 bytes a
// slot, at most half full), each marked when pending.index has a line for it, and twice
// marked when it has more than one (an id used again: the file decides). The seed is
// new for every scan, so two names whose hashes collide (about one chance in 10^7 with
// a million names) do not collide again in the next scan.
class NameSet {
public:
  enum Mark : std::uint64_t { listed = 0, logged = 1, logged_twice = 2 };

  // `expected`: about how many names will be inserted (the table grows past it).
  NameSet(std::uint64_t seed, std::size_t expected) : m_seed(seed | 1) {
    std::size_t n = 1024;
    while (n < 2 * expected) {
      n *= 2;
    }
    m_slots.resize(n);
  }

  void insert(std::string_view name) {
    if ((m_used + 1) * 2 > m_slots.size()) {
      grow();
    }
    std::uint64_t& s = slot(key(name));
    if (s == 0) {
      s = key(name);
      ++m_used;
    }
  }
  // Marks `name` as logged; returns what it was before. Safe from several threads once
  // every name is inserted.
  std::optional<Mark> log(std::string_view name) {
    std::atomic_ref<std::uint64_t> s(slot(key(name)));
    std::uint64_t v = s.load(std::memory_order_relaxed);
    if (v == 0) {
      return std::nullopt;
    }
    Mark before = listed;
    do {
      before = static_cast<Mark>(v & 3);
    } while (!s.compare_exchange_weak(v, (v & ~std::uint64_t{3}) | (before == listed ? logged : logged_twice),
                                      std::memory_order_relaxed));
    return before;
  }
  Mark mark(std::string_view name) const {
    const std::uint64_t s = m_slots[find(key(name))];
    return static_cast<Mark>(s & 3);
  }

private:
  std::uint64_t key(std::string_view name) const {
    std::uint64_t h = 0xcbf29ce484222325ULL ^ m_seed; // FNV-1a, seeded, then mixed
    for (const char c : name) {
      h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    const std::uint64_t k = h & ~std::uint64_t{3};
    return k == 0 ? 4 : k;
  }
  std::size_t find(std::uint64_t k) const {
    const std::size_t mask = m_slots.size() - 1;
    std::size_t i = static_cast<std::size_t>(k >> 2) & mask;
    while (m_slots[i] != 0 && (m_slots[i] & ~std::uint64_t{3}) != k) {
      i = (i + 1) & mask;
    }
    return i;
  }
  std::uint64_t& slot(std::uint64_t k) { return m_slots[find(k)]; }
  void grow() {
    std::vector<std::uint64_t, MappedAllocator<std::uint64_t>> old(m_slots.size() * 2);
    old.swap(m_slots);
    for (const std::uint64_t s : old) {
      if (s != 0) {
        m_slots[find(s & ~std::uint64_t{3})] = s;
      }
    }
  }

  std::uint64_t m_seed;
  std::vector<std::uint64_t, MappedAllocator<std::uint64_t>> m_slots;
  std::size_t m_used = 0;
};

// Reads the job files named in `stems` (of `from`) on several threads, several reads in
// flight when they are not cached, and passes each entry to `fn` in order.
void read_entries(const Spool& spool, JobState from, const std::vector<std::string>& stems,
                  std::int64_t default_priority, const std::function<void(IndexEntry)>& fn) {
  std::vector<std::optional<IndexEntry>> read(stems.size());
  for_chunks(
      stems.size(),
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
          read[i] = read_index_entry(spool, from, stems[i], default_priority);
        }
      },
      Work::io, 256);
  for (std::optional<IndexEntry>& e : read) {
    if (e) {
      fn(std::move(*e));
    }
  }
}

// Lists `from` and reads the files for which `wanted(stem)` holds, a batch at a time.
void read_listed(const Spool& spool, JobState from, std::int64_t default_priority,
                 const std::function<bool(std::string_view)>& wanted, const std::function<void(IndexEntry)>& fn) {
  constexpr std::size_t k_batch = 4096;
  std::vector<std::string> stems;
  spool.for_each_job(from, [&](std::string_view stem) {
    if (wanted(stem)) {
      stems.emplace_back(stem);
      if (stems.size() == k_batch) {
        read_entries(spool, from, stems, default_priority, fn);
        stems.clear();
      }
    }
  });
  read_entries(spool, from, stems, default_priority, fn);
}

} // namespace

ScanStats scan_waiting(const Spool& spool, std::int64_t default_priority, Micros now, JobIndex& index,
                       const std::function<bool(const IndexEntry&)>& accept,
                       const std::function<void(std::size_t)>& progress) {
  ScanStats st;
  index.clear();
  std::atomic<std::size_t> looked{0};
  const auto offer = [&](JobIndex& into, IndexEntry& e) { // may move from e
    if (progress) {
      if (const std::size_t n = ++looked; n % 4096 == 0) {
        progress(n);
      }
    }
    if (e.due <= now) {
      e.due = 0;
    }
    if (!into.left_out(e) && (!accept || accept(e))) {
      into.add(std::move(e));
    }
  };
  // What waits is what pending/ lists, whatever pending.index says.
  // Sized from the directory's own size (an entry takes 40 to 60 bytes of it; it never
  // shrinks, so after a big drain this is too much, and a table half its size grows).
  const auto dir_size = spool.dir(JobState::pending).stat(".");
  NameSet names(sys::random_u64(), dir_size ? static_cast<std::size_t>(dir_size->st_size) / 64 : 0);
  spool.for_each_job(JobState::pending, [&](std::string_view stem) {
    names.insert(stem);
    ++st.pending;
  });
  // The order of those it has a line for, from pending.index: a large file in two
  // halves on two threads, each into an index of its own, merged after.
  struct Part {
    std::size_t lines = 0;
    std::size_t useful = 0;
    std::size_t twice = 0;
  };
  const auto read_part = [&](std::uint64_t begin, std::uint64_t end, JobIndex& into, Part& part) {
    IndexEntry e;
    pending_index::read_lines(spool, begin, end, [&](std::string_view line) {
      ++part.lines;
      if (!pending_index::parse_line(line, e)) {
        return;
      }
      const auto before = names.log(e.id);
      if (!before) {
        return; // stale: the job has moved on
      }
      if (*before == NameSet::listed) {
        ++part.useful;
        offer(into, e);
      } else if (*before == NameSet::logged) {
        ++part.twice; // an id used again: its file decides (below)
      }
    });
  };
  const auto size = spool.root_dir().stat(pending_index::k_file);
  const std::uint64_t half = size && size->st_size > (4 << 20) ? static_cast<std::uint64_t>(size->st_size) / 2 : 0;
  Part parts[2];
  if (half > 0) {
    JobIndex second(index.capacity());
    std::exception_ptr error;
    std::thread t([&] {
      try {
        read_part(half, UINT64_MAX, second, parts[1]);
      } catch (...) {
        error = std::current_exception();
      }
    });
    try {
      read_part(0, half, index, parts[0]);
    } catch (...) {
      t.join();
      throw;
    }
    t.join();
    if (error) {
      std::rethrow_exception(error);
    }
    index.merge(std::move(second));
  } else {
    read_part(0, UINT64_MAX, index, parts[0]);
  }
  const std::size_t lines = parts[0].lines + parts[1].lines;
  const std::size_t twice = parts[0].twice + parts[1].twice;
  const std::size_t useful = parts[0].useful + parts[1].useful - twice;
  if (twice > 0) {
    index.remove_if(
        [&](const IndexEntry& x) { return x.from == JobState::pending && names.mark(x.id) == NameSet::logged_twice; });
  }
  st.from_log = useful;
  // A rewrite when the list lacks jobs (so that the next scan does not read them again)
  // or is mostly stale lines (jobs long done).
  const bool lacking = useful < st.pending;
  std::optional<pending_index::Rewrite> rewrite;
  if (lacking || lines > 2 * useful + 10'000) {
    try {
      rewrite.emplace(spool);
    } catch (const Error&) {
      // tmp/ unwritable: the scan goes on without
    }
  }
  if (lacking) {
    std::string line;
    read_listed(
        spool, JobState::pending, default_priority,
        [&](std::string_view stem) { return names.mark(stem) != NameSet::logged; },
        [&](IndexEntry x) {
          ++st.read;
          if (rewrite && valid_id(x.id)) {
            line.clear();
            pending_index::append_line(line, x);
            rewrite->add(line);
          }
          offer(index, x);
        });
  }
  read_listed(
      spool, JobState::failed, default_priority, [](std::string_view) { return true; },
      [&](IndexEntry x) {
        ++st.read;
        offer(index, x);
      });
  if (rewrite) {
    try {
      // The lines of the jobs listed, once each; then any appended since the read above,
      // as they are (jobs enqueued during the scan).
      std::size_t n = 0;
      IndexEntry e;
      pending_index::read_lines(spool, 0, [&](std::string_view line) {
        if (++n > lines) {
          rewrite->add_line(line);
        } else if (pending_index::parse_line(line, e) && names.mark(e.id) == NameSet::logged) {
          rewrite->add_line(line);
        }
      });
      rewrite->commit();
      st.compacted = true;
    } catch (const Error&) {
      // advice: the old list stays
    }
  }
  return st;
}

} // namespace queuectl
