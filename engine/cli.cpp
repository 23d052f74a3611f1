#include "engine/cli.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "engine/docs.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/metrics_server.h"
#include "engine/pipeline.h"
#include "engine/runner.h"
#include "engine/testing.h"
#include "engine/yaml_checks.h"

namespace sluice {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

std::atomic<bool> g_stop{false};
std::atomic<bool> g_json_logs{false};
// The JSON lines the signal handler writes, made before it is installed (PrepareSignalLines):
// it may not allocate.
std::string g_json_draining = "{\"level\":\"info\",\"message\":\"draining\"}\n";
std::string g_json_stopping = "{\"level\":\"warn\",\"message\":\"stopping now\"}\n";

void PrepareSignalLines(const std::string& pipeline) {
  std::string name;
  AppendJsonString(name, pipeline);
  g_json_draining = "{\"level\":\"info\",\"message\":\"draining\",\"pipeline\":" + name + "}\n";
  g_json_stopping =
      "{\"level\":\"warn\",\"message\":\"stopping now\",\"pipeline\":" + name + "}\n";
}

// Only async-signal-safe calls here: the messages are fixed strings in both log formats.
void OnSignal(int) {
  const bool json = g_json_logs.load();
  if (g_stop.exchange(true)) {
    // Second signal: the user insists. Nothing acknowledged is lost by leaving now.
    const char text[] = "sluice: stopping now\n";
    if (json) {
      (void)!write(2, g_json_stopping.data(), g_json_stopping.size());
    } else {
      (void)!write(2, text, sizeof(text) - 1);
    }
    _exit(130);
  }
  const char text[] = "sluice: draining (Ctrl-C again to stop at once)\n";
  if (json) {
    (void)!write(2, g_json_draining.data(), g_json_draining.size());
  } else {
    (void)!write(2, text, sizeof(text) - 1);
  }
}

std::string WithCommas(uint64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
  return s;
}

void PrintDiagnostics(const Diagnostics& diags, bool errors_only = false) {
  for (const auto& d : diags.Sorted()) {
    if (errors_only && d.severity != Severity::kError) continue;
    std::fprintf(stderr, "%s\n", d.ToString().c_str());
  }
}

std::unique_ptr<Plan> LoadAndPlan(const std::string& file, const Registry& registry,
                                  Diagnostics& diags) {
  auto decl = ParsePipelineFile(file, registry, diags);
  if (!decl) return nullptr;
  return PlanPipeline(std::move(*decl), diags);
}

// ---- validate ----
struct Reached {
  std::string node;
  std::string what;  // what its probe checked
};

// `validate --connect`: asks every node of a valid plan, in file order, to check its services.
std::vector<Reached> ProbeServices(const Plan& plan, const ProbeOptions& options,
                                   Diagnostics& diags) {
  std::vector<Reached> reached;
  for (const PlannedNode& n : plan.nodes) {
    if (!n.ok) continue;
    Result<std::string> r = std::string();
    if (n.source) r = n.source->Probe(options);
    if (n.transform) r = n.transform->Probe(options);
    if (n.sink) r = n.sink->Probe(options);
    if (!r.ok()) {
      diags.AddStatus(r.status(), n.cfg->mark, n.cfg->name);
    } else if (!r->empty()) {
      reached.push_back({n.cfg->name, std::move(*r)});
    }
  }
  // The dead-letter file, opened at the first rejected row: a folder it cannot be written in
  // would pause the pipeline then. Relative to the working folder when the file names none.
  const PipelineSettings& s = plan.decl.settings;
  auto writable = CheckWritable(s.dead_letter_path);
  if (!writable.ok()) {
    diags.Error(s.dead_letter_mark, "",
                fmt::format("dead_letter: {}", writable.status().message()));
  } else {
    reached.push_back({"dead_letter", std::move(*writable)});
  }
  return reached;
}

int Validate(const std::vector<std::string>& files, const std::string& format,
             const std::optional<ProbeOptions>& connect, const Registry& registry) {
  bool all_ok = true;
  std::string json = "[";
  for (size_t k = 0; k < files.size(); ++k) {
    Diagnostics diags;
    auto plan = LoadAndPlan(files[k], registry, diags);
    // Services are asked only about a pipeline that is valid on its own: the probes rely on
    // the checked schemas, and a static error is the one to fix first.
    std::vector<Reached> reached;
    if (connect && plan && !diags.HasErrors()) reached = ProbeServices(*plan, *connect, diags);
    bool ok = !diags.HasErrors();
    all_ok = all_ok && ok;
    if (format == "json") {
      if (k) json += ",";
      json += "{\"file\":";
      AppendJsonString(json, files[k]);
      json += fmt::format(",\"valid\":{},\"problems\":[", ok ? "true" : "false");
      const auto sorted = diags.Sorted();
      for (size_t i = 0; i < sorted.size(); ++i) {
        const auto& d = sorted[i];
        if (i) json += ",";
        json += fmt::format("{{\"severity\":\"{}\",\"file\":",
                            d.severity == Severity::kError ? "error" : "warning");
        AppendJsonString(json, d.mark.file);
        json += fmt::format(",\"line\":{},\"column\":{},\"node\":", d.mark.line, d.mark.column);
        AppendJsonString(json, d.node);
        json += ",\"message\":";
        AppendJsonString(json, d.message);
        json += "}";
      }
      json += "]";
      if (connect) {
        json += ",\"reached\":[";
        for (size_t i = 0; i < reached.size(); ++i) {
          json += i ? ",{\"node\":" : "{\"node\":";
          AppendJsonString(json, reached[i].node);
          json += ",\"checked\":";
          AppendJsonString(json, reached[i].what);
          json += "}";
        }
        json += "]";
      }
      json += "}";
    } else {
      PrintDiagnostics(diags);
      for (const auto& r : reached)
        std::fprintf(stderr, "%s: reached: %s: %s\n", files[k].c_str(), r.node.c_str(),
                     r.what.c_str());
      std::fprintf(stderr, "%s: %s\n", files[k].c_str(),
                   ok ? (diags.items().empty() ? "valid" : "valid, with warnings")
                      : fmt::format("invalid ({} error{})", diags.ErrorCount(),
                                    diags.ErrorCount() == 1 ? "" : "s")
                            .c_str());
    }
  }
  if (format == "json") std::printf("%s]\n", json.c_str());
  return all_ok ? kExitOk : kExitInvalid;
}

// ---- graph ----
int Graph(const std::string& file, const std::string& format, const Registry& registry) {
  Diagnostics diags;
  auto plan = LoadAndPlan(file, registry, diags);
  if (!plan) {
    PrintDiagnostics(diags);
    return kExitInvalid;
  }
  const auto& nodes = plan->decl.nodes;
  auto label = [&](size_t i) { return fmt::format("{}\\n({})", nodes[i].name, nodes[i].type); };
  std::string out;
  if (format == "mermaid") {
    out = "flowchart LR\n";
    for (size_t i = 0; i < nodes.size(); ++i) {
      const char* open = nodes[i].role == Role::kSource ? "[/"
                         : nodes[i].role == Role::kSink ? "[\\"
                                                        : "[";
      const char* close = nodes[i].role == Role::kSource ? "/]"
                          : nodes[i].role == Role::kSink ? "\\]"
                                                         : "]";
      out += fmt::format("  n{}{}\"{}<br/>{}\"{}\n", i, open, nodes[i].name, nodes[i].type, close);
    }
    for (size_t i = 0; i < nodes.size(); ++i)
      for (int o : plan->nodes[i].outputs) out += fmt::format("  n{} --> n{}\n", i, o);
  } else {
    out = fmt::format("digraph \"{}\" {{\n  rankdir=LR;\n", plan->decl.name);
    for (size_t i = 0; i < nodes.size(); ++i) {
      const char* shape = nodes[i].role == Role::kSource ? "invhouse"
                          : nodes[i].role == Role::kSink ? "house"
                                                         : "box";
      out += fmt::format("  \"{}\" [label=\"{}\", shape={}];\n", nodes[i].name, label(i), shape);
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      for (int o : plan->nodes[i].outputs) {
        out += fmt::format("  \"{}\" -> \"{}\";\n", nodes[i].name, nodes[o].name);
      }
    }
    out += "}\n";
  }
  std::fputs(out.c_str(), stdout);
  PrintDiagnostics(diags, true);
  return diags.HasErrors() ? kExitInvalid : kExitOk;
}

// ---- test ----
int Test(const std::vector<std::string>& files, const Registry& registry) {
  int passed = 0, failed = 0;
  for (const auto& file : files) {
    Diagnostics diags;
    auto plan = LoadAndPlan(file, registry, diags);
    if (!plan || diags.HasErrors()) {
      PrintDiagnostics(diags, true);
      std::fprintf(stderr, "%s: invalid pipeline, tests not run\n", file.c_str());
      ++failed;
      continue;
    }
    // Test cases live in the pipeline file, or beside it in <name>.tests.yaml.
    std::vector<std::pair<YAML::Node, std::string>> suites;
    if (plan->decl.tests.IsDefined()) suites.emplace_back(plan->decl.tests, file);
    std::filesystem::path side(file);
    side.replace_extension(".tests.yaml");
    bool side_invalid = false;
    if (std::filesystem::exists(side)) {
      // The same checks as a pipeline file's: text, one document, aliases, keys given twice.
      Diagnostics side_diags;
      std::ifstream in(side);
      std::optional<YAML::Node> loaded;
      if (!in.is_open()) {
        side_diags.Error(Mark{side.string(), 0, 0}, "", "cannot open the file");
      } else {
        std::stringstream text;
        text << in.rdbuf();
        loaded = LoadYamlText(text.str(), side.string(), kTestFileKind, side_diags);
      }
      if (loaded && CheckTree(*loaded, side.string(), side_diags) && !side_diags.HasErrors()) {
        // Read through a const node: a non-const operator[] would turn a bare list into a map.
        const YAML::Node doc = *loaded;
        const bool wrapped = doc.IsMap() && doc["tests"].IsDefined();
        suites.emplace_back(wrapped ? YAML::Node(doc["tests"]) : doc, side.string());
      } else {
        PrintDiagnostics(side_diags, true);
        std::fprintf(stderr, "%s: invalid test file, its tests not run\n", side.c_str());
        ++failed;
        side_invalid = true;
      }
    }
    if (suites.empty() && !side_invalid) {
      std::fprintf(stderr, "%s: no test cases (add 'tests:' or %s)\n", file.c_str(),
                   side.filename().c_str());
    }
    for (auto& [tests, where] : suites) {
      for (const auto& r : RunPipelineTests(*plan, tests, where)) {
        if (r.failures.empty()) {
          ++passed;
          std::printf("ok    %s: %s\n", where.c_str(), r.name.c_str());
        } else {
          ++failed;
          std::printf("FAIL  %s: %s\n", where.c_str(), r.name.c_str());
          for (const auto& f : r.failures) std::printf("      %s\n", f.c_str());
        }
      }
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? kExitOk : kExitInvalid;
}

// ---- run ----
void PrintSummary(const std::string& name, const RunSummary& s, bool text) {
  const double rate = s.seconds > 0 ? s.records_read / s.seconds : 0;
  const char* how = !s.status.ok() ? "failed" : s.stopped ? "stopped" : "finished";
  std::string msg = fmt::format(
      "pipeline '{}' {}: read {} records, wrote {} rows, {} dead letters, {:.2f} s ({} "
      "records/s)",
      name, how, WithCommas(s.records_read), WithCommas(s.rows_written), WithCommas(s.dead_letters),
      s.seconds, WithCommas(static_cast<uint64_t>(rate + 0.5)));
  if (text) {
    Log(LogLevel::kInfo, msg);
    for (const auto& n : s.nodes) {
      std::fprintf(stderr, "  %-10s %-20s in %12s  out %12s  rejected %s\n", RoleName(n.role),
                   n.name.c_str(), WithCommas(n.rows_in).c_str(), WithCommas(n.rows_out).c_str(),
                   WithCommas(n.rejected).c_str());
    }
    if (s.dead_letters > 0)
      std::fprintf(stderr, "  dead letters: %s\n", s.dead_letter_path.c_str());
    return;
  }
  std::string nodes = "[";
  for (size_t i = 0; i < s.nodes.size(); ++i) {
    const auto& n = s.nodes[i];
    if (i) nodes += ",";
    nodes += "{\"name\":";
    AppendJsonString(nodes, n.name);
    nodes += fmt::format(",\"role\":\"{}\",\"type\":", RoleName(n.role));
    AppendJsonString(nodes, n.type);
    nodes += fmt::format(",\"rows_in\":{},\"rows_out\":{},\"rejected\":{}}}", n.rows_in, n.rows_out,
                         n.rejected);
  }
  nodes += "]";
  std::vector<LogField> fields = {
      {"pipeline", name},
      {"outcome", how},
      {"records_read", s.records_read},
      {"rows_written", s.rows_written},
      {"dead_letters", s.dead_letters},
      {"seconds", s.seconds},
      {"records_per_s", static_cast<uint64_t>(rate + 0.5)},
      LogField::Json("nodes", nodes),
  };
  if (s.dead_letters > 0) fields.emplace_back("dead_letter_file", s.dead_letter_path);
  Log(LogLevel::kInfo, msg, fields);
}

struct RunFlags {
  bool quiet = false;
  bool progress = true;
  int threads = 0;
  std::string metrics_addr;  // empty: no metrics endpoint
};

int Run(const std::string& file, const RunFlags& flags, const Registry& registry) {
  Diagnostics diags;
  auto plan = LoadAndPlan(file, registry, diags);
  if (GetLogFormat() == LogFormat::kText) {
    PrintDiagnostics(diags);
  } else {
    for (const auto& d : diags.Sorted()) {
      Log(d.severity == Severity::kError ? LogLevel::kError : LogLevel::kWarn, d.message,
          {{"file", d.mark.file},
           {"line", static_cast<uint64_t>(d.mark.line)},
           {"column", static_cast<uint64_t>(d.mark.column)},
           {"node", d.node}});
    }
  }
  if (!plan || diags.HasErrors()) {
    if (GetLogFormat() == LogFormat::kText) {
      std::fprintf(stderr, "%s: invalid (%zu error%s); not started\n", file.c_str(),
                   diags.ErrorCount(), diags.ErrorCount() == 1 ? "" : "s");
    }
    return kExitInvalid;
  }

  SetLogPipeline(plan->decl.name);
  PrepareSignalLines(plan->decl.name);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  Readiness readiness;
  readiness.stop = &g_stop;
  std::unique_ptr<MetricsServer> metrics;
  if (!flags.metrics_addr.empty()) {
    // Up before the pipeline is built, so a supervisor sees /healthz (and /readyz answering
    // "starting") while connections are made and models loaded.
    auto started = MetricsServer::Start(flags.metrics_addr, Metrics(), readiness);
    if (!started.ok()) {
      Log(LogLevel::kError, started.status().message());
      return kExitInvalid;
    }
    metrics = std::move(*started);
  }
  const bool text = GetLogFormat() == LogFormat::kText;
  const bool show_progress = flags.progress && !flags.quiet && text && isatty(2);
  LiveCounters live;
  RunOptions options;
  options.stop = &g_stop;
  options.live = &live;
  options.threads = flags.threads;
  options.readiness = &readiness;
  if (!flags.quiet) {
    Log(LogLevel::kInfo, fmt::format("running pipeline '{}'", plan->decl.name), {{"file", file}});
  }

  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread progress;
  if (show_progress) {
    progress = std::thread([&] {
      auto start = std::chrono::steady_clock::now();
      uint64_t last = 0;
      auto last_t = start;
      std::unique_lock<std::mutex> lock(mu);
      while (!cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return done; })) {
        auto now = std::chrono::steady_clock::now();
        uint64_t read = live.records_read.load();
        double dt = std::chrono::duration<double>(now - last_t).count();
        double rate = dt > 0 ? (read - last) / dt : 0;
        last = read;
        last_t = now;
        std::fprintf(stderr, "\r\033[K  in %s · out %s · %s rec/s · dead letters %s",
                     WithCommas(read).c_str(), WithCommas(live.rows_written.load()).c_str(),
                     WithCommas(static_cast<uint64_t>(rate)).c_str(),
                     WithCommas(live.rejected.load()).c_str());
      }
      std::fprintf(stderr, "\r\033[K");
    });
  }
  auto result = RunPipeline(*plan, options);
  if (progress.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    progress.join();
  }
  if (!result.ok()) {
    Log(LogLevel::kError, fmt::format("pipeline '{}' could not start: {}", plan->decl.name,
                                      result.status().message()));
    return kExitInvalid;
  }
  const RunSummary& s = *result;
  const bool failed = !s.status.ok();
  if (!flags.quiet || failed) PrintSummary(plan->decl.name, s, text);
  if (failed) {
    Log(LogLevel::kError,
        fmt::format("pipeline '{}' failed: {}", plan->decl.name, s.status.message()));
    return kExitInvalid;
  }
  return kExitOk;
}

}  // namespace

int RunCli(int argc, char** argv, const Registry& registry) {
  CLI::App app{"Sluice: streaming ML inference from declarative pipelines.", "sluice"};
  app.set_version_flag("--version", std::string("sluice ") + SLUICE_VERSION);
  app.require_subcommand(1);
  std::string log_format = "text";
  app.add_option("--log-format", log_format, "log format on stderr")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  auto* run = app.add_subcommand("run", "run a pipeline until its input ends or it is stopped");
  std::string run_file;
  RunFlags run_flags;
  bool no_progress = false;
  run->add_option("FILE", run_file, "pipeline file")->required();
  run->add_flag("-q,--quiet", run_flags.quiet, "no progress and no summary");
  run->add_flag("--no-progress", no_progress, "no progress line on a terminal");
  run->add_option("--threads", run_flags.threads, "worker threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  run->add_option("--log-format", log_format, "log format on stderr")
      ->check(CLI::IsMember({"text", "json"}));
  run->add_option("--metrics-addr", run_flags.metrics_addr,
                  "serve Prometheus /metrics, /healthz and /readyz on HOST:PORT "
                  "(e.g. 127.0.0.1:9464)");

  auto* validate = app.add_subcommand(
      "validate", "check pipeline files without running them; exit 0 valid, 1 invalid");
  std::vector<std::string> validate_files;
  std::string validate_format = "text";
  validate->add_option("FILE", validate_files, "pipeline files")->required();
  validate->add_option("--format", validate_format, "output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  bool validate_connect = false;
  ProbeOptions probe_options;
  validate->add_flag("--connect", validate_connect,
                     "also ask the services the pipeline reaches (brokers, databases, model "
                     "servers) what only they can tell, and check its files and listen "
                     "addresses on this machine; nothing is written");
  validate->add_option("--connect-timeout-ms", probe_options.timeout_ms,
                       "bound on each wait for a service with --connect")
      ->check(CLI::Range(int64_t{1}, int64_t{600000}))
      ->capture_default_str();

  auto* test = app.add_subcommand(
      "test", "run a pipeline's test cases in memory (tests: in the file, or FILE.tests.yaml)");
  std::vector<std::string> test_files;
  test->add_option("FILE", test_files, "pipeline files")->required();

  auto* graph = app.add_subcommand("graph", "print a pipeline's graph (DOT or Mermaid)");
  std::string graph_file, graph_format = "dot";
  graph->add_option("FILE", graph_file, "pipeline file")->required();
  graph->add_option("--format", graph_format, "dot or mermaid")
      ->check(CLI::IsMember({"dot", "mermaid"}))
      ->capture_default_str();

  auto* ops = app.add_subcommand("operators", "list operators, or write their reference");
  bool docs = false, json_schema = false;
  std::string output;
  ops->add_flag("--docs", docs, "the Markdown reference (docs/operators.md)");
  ops->add_flag("--json-schema", json_schema,
                "the JSON Schema of pipeline files (schemas/pipeline.schema.json)");
  ops->add_option("-o,--output", output, "write to this file instead of standard output");

  std::vector<std::pair<CLI::App*, std::function<int()>>> extra;
  for (const CommandSpec& command : registry.commands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.summary);
    extra.emplace_back(sub, command.setup(sub));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  SetLogFormat(log_format == "json" ? LogFormat::kJson : LogFormat::kText);
  g_json_logs = log_format == "json";

  try {
    if (*run) {
      run_flags.progress = !no_progress;
      return Run(run_file, run_flags, registry);
    }
    if (*validate) {
      return Validate(validate_files, validate_format,
                      validate_connect ? std::optional<ProbeOptions>(probe_options) : std::nullopt,
                      registry);
    }
    if (*test) return Test(test_files, registry);
    if (*graph) return Graph(graph_file, graph_format, registry);
    for (auto& [sub, run_command] : extra) {
      if (*sub) return run_command();
    }
    if (*ops) {
      std::string text;
      if (docs) {
        text = OperatorsMarkdown(registry);
      } else if (json_schema) {
        text = PipelineJsonSchema(registry);
      } else {
        for (const OperatorSpec* spec : registry.All()) {
          text +=
              fmt::format("{:<10} {:<14} {}\n", RoleName(spec->role), spec->name, spec->summary);
        }
      }
      if (output.empty()) {
        std::fputs(text.c_str(), stdout);
      } else {
        std::ofstream out(output, std::ios::binary);
        out << text;
        if (!out) {
          std::fprintf(stderr, "sluice: cannot write '%s'\n", output.c_str());
          return kExitInvalid;
        }
      }
      return kExitOk;
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, fmt::format("internal error: {}", e.what()));
    return kExitInvalid;
  }
  return kExitUsage;
}

}  // namespace sluice
