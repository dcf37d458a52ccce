#include "queuectl/completion.hpp"

#include "queuectl/config.hpp"
#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>

namespace queuectl::cli {

namespace {

// What a value is, read from the type name the command table gives it ("ID...", "STATE").
enum class Kind { any, ids, states, queues, keys, dirs, files, shells };

Kind kind_of(std::string type) {
  if (const auto dots = type.find("..."); dots != std::string::npos) {
    type.erase(dots);
  }
  static const std::pair<const char*, Kind> k_kinds[] = {
      {"ID", Kind::ids},   {"STATE", Kind::states}, {"NAME", Kind::queues},  {"KEY", Kind::keys},
      {"DIR", Kind::dirs}, {"FILE", Kind::files},   {"SHELL", Kind::shells},
  };
  for (const auto& [name, kind] : k_kinds) {
    if (type == name) {
      return kind;
    }
  }
  return Kind::any;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool takes_value(const CLI::Option* o) {
  return o->get_items_expected_max() != 0;
}

// The option named `word` ("--count", "-c") of `where` or of a command above it.
const CLI::Option* option_named(const CLI::App* where, const std::string& word) {
  for (; where != nullptr; where = where->get_parent()) {
    if (const CLI::Option* o = where->get_option_no_throw(word); o != nullptr && o->nonpositional()) {
      return o;
    }
  }
  return nullptr;
}

const CLI::App* subcommand_named(const CLI::App* where, const std::string& word) {
  const auto subs = where->get_subcommands([&](const CLI::App* c) { return c->get_name() == word; });
  return subs.empty() ? nullptr : subs.front();
}

void add_line(std::string& out, std::string_view cur, const std::string& word, const std::string& description = {}) {
  if (starts_with(word, cur)) {
    out += description.empty() ? word + "\n" : word + "\t" + description + "\n";
  }
}

void add_subcommands(std::string& out, std::string_view cur, const CLI::App* where) {
  for (const CLI::App* sub : where->get_subcommands([](const CLI::App*) { return true; })) {
    add_line(out, cur, sub->get_name(), sub->get_description());
  }
}

void add_options(std::string& out, std::string_view cur, const CLI::App* where) {
  for (const CLI::App* a = where; a != nullptr; a = a->get_parent()) {
    for (const CLI::Option* o : a->get_options([](const CLI::Option* o) { return o->nonpositional(); })) {
      const bool version = o->check_lname("version");
      if (a != where && (o->check_lname("help") || version)) {
        continue; // the parent's --help and --version are not the command's
      }
      for (const std::string& l : o->get_lnames()) {
        add_line(out, cur, "--" + l, o->get_description());
      }
    }
  }
}

// Job ids, queue names: read from the spool when there is one; nothing otherwise.
void add_from_spool(std::string& out, std::string_view cur, Kind kind, const std::optional<std::string>& spool_flag) {
  try {
    const Spool spool = Spool::open_existing(Spool::resolve(spool_flag));
    std::set<std::string> found;
    if (kind == Kind::ids) {
      for (JobState s : k_all_states) {
        spool.for_each_job(s, [&](std::string_view stem) {
          if (starts_with(stem, cur)) {
            found.emplace(stem);
          }
        });
      }
    } else {
      // Queues with settings and the default one; finding every queue in use would read
      // every job file.
      found.emplace(k_default_queue);
      for (const auto& [name, settings] : spool.load_config().queues()) {
        found.insert(name);
      }
    }
    for (const std::string& w : found) {
      add_line(out, cur, w);
    }
  } catch (const std::exception&) {
    // no spool, or one we may not read: nothing to offer
  }
}

void add_values(std::string& out, std::string_view cur, Kind kind, const std::optional<std::string>& spool) {
  switch (kind) {
  case Kind::any:
    break;
  case Kind::ids:
  case Kind::queues:
    add_from_spool(out, cur, kind, spool);
    break;
  case Kind::states:
    for (const char* s : {"pending", "held", "processing", "failed", "completed", "done", "dead"}) {
      add_line(out, cur, s);
    }
    break;
  case Kind::keys:
    for (const std::string& k : Config::keys()) {
      add_line(out, cur, k);
    }
    break;
  case Kind::dirs:
    out += ":dirs\n";
    break;
  case Kind::files:
    out += ":files\n";
    break;
  case Kind::shells:
    for (const char* s : {"bash", "zsh", "fish"}) {
      add_line(out, cur, s);
    }
    break;
  }
}

} // namespace

std::string complete_words(const CLI::App& app, const std::vector<std::string>& words) {
  const std::string cur = words.empty() ? std::string() : words.back();
  const CLI::App* where = &app;
  const CLI::App* help_where = nullptr; // after `help`: the command its words name
  std::optional<std::string> spool;
  std::size_t positionals = 0;
  const std::size_t n = words.empty() ? 0 : words.size() - 1;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& w = words[i];
    if (starts_with(w, "-") && w != "-") {
      const auto eq = w.find('=');
      const CLI::Option* o = option_named(where, w.substr(0, eq));
      if (o == nullptr || !takes_value(o)) {
        continue;
      }
      const bool is_spool = o->check_lname("spool");
      if (eq == std::string::npos && i + 1 < n && words[i + 1] == "=") {
        ++i; // bash splits "--spool=DIR" into three words
      }
      if (eq != std::string::npos) {
        if (is_spool) {
          spool = w.substr(eq + 1);
        }
      } else if (i + 1 == n) {
        if (cur == "=") {
          break; // bash's "--state=": below
        }
        std::string out; // the word being completed is this option's value
        add_values(out, cur, kind_of(o->get_type_name()), spool);
        return out;
      } else if (is_spool) {
        spool = words[++i];
      } else {
        ++i;
      }
    } else if (help_where != nullptr) {
      if (const CLI::App* sub = subcommand_named(help_where, w)) {
        help_where = sub;
      }
    } else if (const CLI::App* sub = subcommand_named(where, w)) {
      where = sub;
      if (where->get_name() == "help" && where->get_parent() == &app) {
        help_where = &app;
      }
    } else {
      ++positionals;
    }
  }
  std::string out;
  // "--state=pe" (zsh, fish), or "=" after "--state" (bash splits at '='): its value.
  const std::size_t eq = cur.find('=');
  const CLI::Option* valued = nullptr;
  if (starts_with(cur, "-") && eq != std::string::npos) {
    valued = option_named(where, cur.substr(0, eq));
  } else if (cur == "=" && n > 0) {
    valued = option_named(where, words[n - 1]);
  }
  if (valued != nullptr && takes_value(valued)) {
    std::string values;
    const std::string prefix = cur == "=" ? std::string() : cur.substr(eq + 1);
    add_values(values, prefix, kind_of(valued->get_type_name()), spool);
    if (starts_with(values, ":")) {
      return values; // a path: the shell's own completion
    }
    for (std::size_t pos = 0; pos < values.size();) {
      const std::size_t nl = values.find('\n', pos);
      out += cur.substr(0, eq + 1) + values.substr(pos, nl - pos) + "\n";
      pos = nl + 1;
    }
    return out;
  }
  if (starts_with(cur, "-")) {
    add_options(out, cur, where);
  } else if (help_where != nullptr) {
    add_subcommands(out, cur, help_where);
  } else if (where->get_subcommands([](const CLI::App*) { return true; }).empty()) {
    // The positional the word fills: the n-th, or the last when it takes several.
    const auto pos = where->get_options([](const CLI::Option* o) { return o->get_positional(); });
    if (!pos.empty()) {
      const CLI::Option* p = pos[std::min(positionals, pos.size() - 1)];
      if (positionals < pos.size() || p->get_items_expected_max() > 1) {
        add_values(out, cur, kind_of(p->get_type_name()), spool);
      }
    }
  } else {
    add_subcommands(out, cur, where);
  }
  return out;
}

std::string completion_script(const std::string& shell) {
  if (shell == "bash") {
    return R"(# bash completion for queuectl. The candidates come from queuectl itself
# ('queuectl __complete WORD...'), so they follow the installed version's commands.
_queuectl() {
  local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n' line
  local -a out
  out=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)) || return
  COMPREPLY=()
  case "${out[0]}" in
  :dirs) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
  :files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
  *) for line in "${out[@]}"; do COMPREPLY+=("${line%%$'\t'*}"); done ;;
  esac
}
complete -F _queuectl queuectl
)";
  }
  if (shell == "zsh") {
    return R"(#compdef queuectl
# zsh completion for queuectl. The candidates come from queuectl itself
# ('queuectl __complete WORD...'), so they follow the installed version's commands.
_queuectl() {
  local -a out cands
  out=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  case $out[1] in
  :dirs) _path_files -/ ;;
  :files) _files ;;
  *)
    local line
    for line in $out; do
      local name=${${line%%$'\t'*}//:/\\:}
      if [[ $line == *$'\t'* ]]; then cands+=("$name:${line#*$'\t'}"); elif [[ -n $line ]]; then cands+=("$name"); fi
    done
    _describe -t values queuectl cands
    ;;
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _queuectl "$@"
else
  compdef _queuectl queuectl
fi
)";
  }
  if (shell == "fish") {
    return R"(# fish completion for queuectl. The candidates come from queuectl itself
# ('queuectl __complete WORD...'), so they follow the installed version's commands.
function __queuectl_complete
    set -l cur (commandline -ct)
    set -l words (commandline -opc) "$cur"
    set -l out ($words[1] __complete $words[2..-1] 2>/dev/null)
    switch "$out[1]"
        case :dirs
            __fish_complete_directories "$cur"
        case :files
            __fish_complete_path "$cur"
        case '*'
            printf '%s\n' $out
    end
end
complete -c queuectl -f -a '(__queuectl_complete)'
)";
  }
  bad_usage(fmt::format("unknown shell '{}': expected bash, zsh or fish", shell));
}

} // namespace queuectl::cli
