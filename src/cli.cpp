// The command line: CLI11 wiring over the table of commands (cli_commands.cpp), and the
// one place that turns errors into messages and exit codes (SPEC section 5).
#include "queuectl/cli.hpp"

#include "queuectl/cli_commands.hpp"
#include "queuectl/cli_text.hpp"
#include "queuectl/completion.hpp"
#include "queuectl/error.hpp"
#include "queuectl/helpers.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/version.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace queuectl::cli {

namespace {

using Apps = std::vector<std::pair<const Command*, CLI::App*>>;

// Builds the subcommands from the table: a row "dlq retry" goes under the row "dlq".
Apps wire(CLI::App& app, Args& a) {
  Apps apps;
  for (const Command& c : commands()) {
    const std::string path = c.path;
    const auto space = path.rfind(' ');
    CLI::App* parent = &app;
    if (space != std::string::npos) {
      parent = std::find_if(apps.begin(), apps.end(), [&](const auto& p) {
                 return path.substr(0, space) == p.first->path;
               })->second;
    }
    CLI::App* sub = parent->add_subcommand(path.substr(space == std::string::npos ? 0 : space + 1), c.help);
    if (!c.run && !c.clustered) { // a group
      sub->require_subcommand(1);
    }
    if (c.options) {
      c.options(*sub, a);
    }
    apps.emplace_back(&c, sub);
  }
  return apps;
}

// The command the words chose (the deepest parsed row), and its subcommand.
std::pair<const Command*, CLI::App*> chosen(const Apps& apps) {
  std::pair<const Command*, CLI::App*> found{nullptr, nullptr};
  for (const auto& p : apps) {
    if (p.second->parsed() && (p.first->run || p.first->clustered)) {
      found = p;
    }
  }
  return found;
}

// The edit distance of two option names, for "did you mean".
std::size_t distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Whether the letters of `word` appear in `name` in order ("cmd" in "command").
bool abbreviates(std::string_view word, std::string_view name) {
  std::size_t at = 0;
  for (char c : word) {
    at = name.find(c, at);
    if (at == std::string_view::npos) {
      return false;
    }
    ++at;
  }
  return true;
}

// The name among `names` that `word` was meant to be: the shortest it abbreviates
// ("--cmd": "--command"), else the closest, when it is close enough to be a typo.
std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& names) {
  std::optional<std::string> best;
  for (const std::string& n : names) {
    if (word.size() >= 3 && abbreviates(word, n) && (!best || n.size() < best->size())) {
      best = n;
    }
  }
  if (best) {
    return best;
  }
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const std::string& n : names) {
    if (const std::size_t d = distance(word, n); d < best_d) {
      best = n;
      best_d = d;
    }
  }
  return best;
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

std::string unknown_command(const std::string& word, const CLI::App& where, const std::string& words) {
  const auto guess = closest(word, subcommand_names(where));
  return fmt::format("unknown command '{}'{}{} (see '{} --help')", word,
                     words == "queuectl" ? "" : " for '" + words + "'",
                     guess ? fmt::format("; did you mean '{}'?", *guess) : "", words);
}

// `queuectl help [COMMAND...]`: the help of the command those words name.
int print_help(const CLI::App& app, const std::vector<std::string>& words) {
  const CLI::App* where = &app;
  std::string path = app.get_name();
  for (const std::string& w : words) {
    const auto subs = where->get_subcommands([&](const CLI::App* c) { return c->get_name() == w; });
    const CLI::App* sub = subs.empty() ? nullptr : subs.front();
    if (sub == nullptr || w == "help") {
      bad_usage(unknown_command(w, *where, path));
    }
    path += " " + w;
    where = sub;
  }
  // As `--help` prints it (App::help() would show the parsed `help` command's own).
  fmt::print("{}", where->get_formatter()->make_help(where, path, CLI::AppFormatMode::Normal));
  return 0;
}

// CLI11's wording replaced by what went wrong and where to look.
std::string usage_message(const CLI::ParseError& e, const CLI::App& app, const Apps& apps, int argc, char** argv) {
  const CLI::App* where = &app;
  std::string words = "queuectl";
  for (const auto& [c, sub] : apps) {
    if (sub->parsed()) {
      where = sub;
      words = std::string("queuectl ") + c->path;
    }
  }
  const std::string hint = fmt::format("see '{} --help'", words);
  std::string msg = e.what();
  if (msg.rfind("A subcommand is required", 0) == 0) {
    // The first word that is not one of the commands parsed so far.
    std::string parsed = words.substr(std::string_view("queuectl").size());
    for (int i = 1; i < argc; ++i) {
      const std::string w = argv[i];
      if (w == "--spool") {
        ++i;
      } else if (!w.empty() && w[0] != '-') {
        if (parsed.rfind(" " + w, 0) == 0) {
          parsed.erase(0, w.size() + 1);
          continue;
        }
        return unknown_command(w, *where, words);
      }
    }
    return fmt::format("missing command{} ({})", where == &app ? "" : " for '" + words + "'", hint);
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    for (int i = 1; i < argc; ++i) {
      const std::string w(std::string_view(argv[i]).substr(0, std::string_view(argv[i]).find('=')));
      if (w.size() < 2 || w[0] != '-' || where->get_option_no_throw(w) != nullptr ||
          app.get_option_no_throw(w) != nullptr) {
        continue;
      }
      std::vector<std::string> names;
      for (const CLI::Option* o : where->get_options()) {
        for (const std::string& name : o->get_lnames()) {
          names.push_back("--" + name);
        }
      }
      const auto guess = w.size() > 2 ? closest(w, names) : std::nullopt;
      return fmt::format("unknown option '{}' for '{}'{} ({})", w, words,
                         guess ? fmt::format("; did you mean '{}'?", *guess) : "", hint);
    }
    std::string extra = msg.substr(msg.find(':') + 1);
    extra.erase(0, extra.find_first_not_of(' '));
    return fmt::format("unexpected argument{} '{}' ({})", extra.find(' ') == std::string::npos ? "" : "s", extra, hint);
  }
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
    // "id is required", "--concurrency is required": what is missing, as --help names it
    const std::string name = msg.substr(0, msg.find(" is required"));
    if (const CLI::Option* o = where->get_option_no_throw(name);
        o != nullptr && msg.find(" is required") != std::string::npos) {
      return o->nonpositional()
                 ? fmt::format("'{}' needs {} {} ({})", words, o->get_name(), o->get_type_name(), hint)
                 : fmt::format("'{}' needs {} ({}) ({})", words, o->get_type_name(), o->get_description(), hint);
    }
  }
  if (const auto at = msg.find(": 1 required "); at != std::string::npos && msg.find(" missing") != std::string::npos) {
    // "--limit: 1 required N missing"
    return fmt::format("{} needs a value ({})", msg.substr(0, at), hint);
  }
  // CLI11's own phrases, in words.
  if (const auto at = msg.find(": At Most 1 required but received"); at != std::string::npos) {
    return fmt::format("{} is given more than once ({})", msg.substr(0, at), hint);
  }
  if (const auto at = msg.find(" excludes "); at != std::string::npos) {
    return fmt::format("{} and {} cannot be used together ({})", msg.substr(0, at), msg.substr(at + 10), hint);
  }
  return fmt::format("{} ({})", msg.empty() ? e.get_name() : msg, hint);
}

// Runs the same command line in helper `name`: beside this executable in the build
// tree, else at `installed` (relative to it). `needs` says what needs it, verb included.
[[noreturn]] void exec_helper(const char* name, const char* installed, const char* needs, char** argv) {
  if (const auto helper = find_helper(name, installed)) {
    sys::exec(*helper, argv);
  }
  fail(fmt::format("{} '{}', which is not installed", needs, installed_helper(installed).string()));
}

} // namespace

int exec_serve_helper(const std::filesystem::path&, const std::string&, const std::string&, int, char** argv) {
  exec_helper("queuectl-serve", k_serve_helper, "'serve' needs", argv);
}

int exec_cluster_helper(const std::string&, Args&, char** argv) {
  exec_helper("queuectl-cluster", k_cluster_helper, "the cluster's commands need", argv);
}

Helpers exec_helpers() {
  return Helpers{exec_serve_helper, exec_cluster_helper};
}

int run(int argc, char** argv, const Helpers& helpers) {
  CLI::App app{"queuectl: a background job queue in a spool directory", "queuectl"};
  app.set_version_flag("-V,--version", std::string("queuectl ") + k_version);
  app.fallthrough();
  app.require_subcommand(1);
  app.footer("Run 'queuectl COMMAND --help' for a command's options; see queuectl(1).");
  Args a;
  app.add_option(
         "--spool", a.spool,
         "spool directory (default: $QUEUECTL_SPOOL, else /var/spool/queuectl for root, else ~/.local/state/queuectl)")
      ->type_name("DIR");
  const Apps apps = wire(app, a);
  if (argc >= 2 && std::string_view(argv[1]) == "__complete") {
    // The completion scripts' question: the candidates for the last word (completion.hpp).
    fmt::print("{}", complete_words(app, std::vector<std::string>(argv + 2, argv + argc)));
    return 0;
  }
  try {
    app.parse(argc, argv);
    const auto [command, sub] = chosen(apps);
    if (std::string_view(command->path) == "help") {
      return print_help(app, a.words);
    }
    if (std::string_view(command->path) == "completion") {
      fmt::print("{}", completion_script(a.shell));
      return 0;
    }
    if (command->clustered && command->clustered(a)) {
      return helpers.cluster(command->path, a, argv);
    }
    // Bad usage is reported before the spool is looked at (SPEC section 5); a command
    // that writes creates the spool, and only once its input has passed.
    const std::filesystem::path root = Spool::resolve(a.spool);
    std::error_code ec; // a path we may not look at: opening the spool says so
    const bool new_spool = !std::filesystem::exists(root, ec) && !ec;
    if (command->check) {
      command->check(a, new_spool);
    }
    Spool spool = command->writes ? Spool::open(root) : Spool::open_existing(root);
    Call call{a, spool, helpers, argc, argv};
    return command->run(call);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    say_error(usage_message(e, app, apps, argc, argv));
    return static_cast<int>(Exit::usage);
  } catch (const Error& e) {
    say_error(e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    fmt::print(stderr, "queuectl: internal error: {}\n", e.what());
    return static_cast<int>(Exit::failure);
  }
}

} // namespace queuectl::cli
