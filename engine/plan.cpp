// Planning a parsed pipeline: wiring the graph, reporting cycles and wiring mistakes,
// propagating schemas node by node, and the exactly-once wiring rules. Parsing is in pipeline.cpp.
#include <algorithm>
#include <functional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/pipeline.h"

namespace sluice {

int Plan::SinkPaths(int from) const {
  std::vector<int> memo(nodes.size(), -1);
  std::function<int(int)> count = [&](int i) -> int {
    if (memo[i] >= 0) return memo[i];
    memo[i] = 0;  // guards against cycles, which validation has rejected anyway
    int n = nodes[i].cfg->role == Role::kSink ? 1 : 0;
    for (int o : nodes[i].outputs) n += count(o);
    memo[i] = n;
    return n;
  };
  return count(from);
}

namespace {

std::vector<int> Walk(const Plan& plan, int from, bool down) {
  std::vector<bool> seen(plan.nodes.size(), false);
  std::vector<int> stack = {from}, out;
  seen[from] = true;
  while (!stack.empty()) {
    int i = stack.back();
    stack.pop_back();
    for (int j : down ? plan.nodes[i].outputs : plan.nodes[i].inputs) {
      if (seen[j]) continue;
      seen[j] = true;
      out.push_back(j);
      stack.push_back(j);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<int> Plan::Downstream(int from) const { return Walk(*this, from, true); }
std::vector<int> Plan::Upstream(int from) const { return Walk(*this, from, false); }

int Plan::PositionsCommittedBy(int source) const {
  for (int j : Downstream(source)) {
    if (nodes[j].sink && nodes[j].sink->CommitsSourcePositions()) return j;
  }
  return -1;
}

namespace {

// A sink that commits its source's positions must be the only sink that source feeds, on one
// path, and the source must have positions to hand over.
void CheckPositionCommits(const Plan& plan, Diagnostics& diags) {
  for (size_t s = 0; s < plan.nodes.size(); ++s) {
    const PlannedNode& sink = plan.nodes[s];
    if (!sink.sink || !sink.sink->CommitsSourcePositions()) continue;
    const NodeConfig& cfg = *sink.cfg;
    for (int u : plan.Upstream(static_cast<int>(s))) {
      const PlannedNode& src = plan.nodes[u];
      if (src.cfg->role != Role::kSource || !src.source) continue;
      if (!src.source->PositionsCommittableDownstream()) {
        diags.Error(cfg.mark, cfg.name,
                    fmt::format("{}: delivery: exactly-once commits the read positions of its "
                                "source, but {} '{}' has none to hand over (a kafka source has)",
                                cfg.Prefix(), src.cfg->type, src.cfg->name));
        continue;
      }
      std::vector<std::string> others;
      for (int d : plan.Downstream(u)) {
        if (d != static_cast<int>(s) && plan.nodes[d].cfg->role == Role::kSink)
          others.push_back("'" + plan.nodes[d].cfg->name + "'");
      }
      if (!others.empty()) {
        diags.Error(cfg.mark, cfg.name,
                    fmt::format("{}: delivery: exactly-once commits the read positions of source "
                                "'{}' with its writes, so it must be the only sink that source "
                                "feeds (it also feeds {}); write the other outputs from a "
                                "pipeline of their own",
                                cfg.Prefix(), src.cfg->name, fmt::join(others, ", ")));
      } else if (plan.SinkPaths(u) != 1) {
        diags.Error(cfg.mark, cfg.name,
                    fmt::format("{}: delivery: exactly-once needs one path from source '{}' to "
                                "this sink; it has {}",
                                cfg.Prefix(), src.cfg->name, plan.SinkPaths(u)));
      }
    }
  }
}

// Reports each cycle once per node on it: the strongly connected components (Tarjan) of the
// nodes a topological sort could not place, of size > 1 or with a self-edge. Nodes that merely
// read from a cycle are not on it.
void ReportCycles(const Plan& plan, const std::vector<int>& indeg, Diagnostics& diags) {
  const auto& nodes = plan.nodes;
  const int n = static_cast<int>(nodes.size());
  std::vector<int> index(n, -1), low(n, 0), stack;
  std::vector<bool> on_stack(n, false);
  int counter = 0;
  std::function<void(int)> visit = [&](int v) {
    index[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = true;
    for (int w : nodes[v].outputs) {
      if (indeg[w] == 0) continue;  // placed by the sort: not on any cycle
      if (index[w] < 0) {
        visit(w);
        low[v] = std::min(low[v], low[w]);
      } else if (on_stack[w]) {
        low[v] = std::min(low[v], index[w]);
      }
    }
    if (low[v] != index[v]) return;
    std::vector<int> component;
    int w;
    do {
      w = stack.back();
      stack.pop_back();
      on_stack[w] = false;
      component.push_back(w);
    } while (w != v);
    const bool self_edge =
        std::find(nodes[v].outputs.begin(), nodes[v].outputs.end(), v) != nodes[v].outputs.end();
    if (component.size() < 2 && !self_edge) return;
    // Name the cycle in the order its edges run, starting from its first node in the file.
    std::sort(component.begin(), component.end());
    std::vector<std::string> path;
    int at = component.front();
    std::set<int> members(component.begin(), component.end()), seen;
    while (seen.insert(at).second) {
      path.push_back(nodes[at].cfg->name);
      int next = -1;
      for (int o : nodes[at].outputs)
        if (members.count(o) && (next < 0 || !seen.count(o))) next = o;
      if (next < 0) break;
      at = next;
    }
    path.push_back(nodes[at].cfg->name);
    for (int m : component) {
      const NodeConfig& cfg = *nodes[m].cfg;
      diags.Error(cfg.mark, cfg.name,
                  fmt::format("{}: is part of a cycle ({}); a pipeline is a directed acyclic "
                              "graph",
                              cfg.Prefix(), fmt::join(path, " -> ")));
    }
  };
  for (int v = 0; v < n; ++v)
    if (indeg[v] > 0 && index[v] < 0) visit(v);
}

// Instantiates one node's operator and computes its output schema (or checks its input).
Status PlanNode(PlannedNode& pn, const NodeConfig& cfg, const SchemaPtr& input) {
  switch (cfg.role) {
    case Role::kSource: {
      SLUICE_ASSIGN_OR_RETURN(pn.source, cfg.spec->make_source(cfg));
      SLUICE_ASSIGN_OR_RETURN(pn.output_schema, pn.source->OutputSchema());
      break;
    }
    case Role::kTransform: {
      SLUICE_ASSIGN_OR_RETURN(pn.transform, cfg.spec->make_transform(cfg));
      SLUICE_ASSIGN_OR_RETURN(pn.output_schema, pn.transform->OutputSchema(input));
      break;
    }
    case Role::kSink: {
      SLUICE_ASSIGN_OR_RETURN(pn.sink, cfg.spec->make_sink(cfg));
      SLUICE_RETURN_IF_ERROR(pn.sink->CheckInput(input));
      break;
    }
  }
  pn.ok = true;
  return Status::Ok();
}

}  // namespace

std::unique_ptr<Plan> PlanPipeline(PipelineDecl decl, Diagnostics& diags) {
  auto plan = std::make_unique<Plan>();
  plan->decl = std::move(decl);
  auto& nodes = plan->nodes;
  const auto& decl_nodes = plan->decl.nodes;
  nodes.resize(decl_nodes.size());
  std::vector<std::string> all_names;
  for (const auto& n : decl_nodes) all_names.push_back(n.name);

  // Edges.
  for (size_t i = 0; i < decl_nodes.size(); ++i) {
    const NodeConfig& cfg = decl_nodes[i];
    nodes[i].cfg = &cfg;
    for (size_t k = 0; k < cfg.inputs.size(); ++k) {
      const std::string& in = cfg.inputs[k];
      int j = plan->decl.IndexOf(in);
      if (j < 0) {
        auto near = ClosestMatch(in, all_names);
        std::string hint;
        if (near) {
          hint = fmt::format(" (did you mean '{}'?)", *near);
        } else if (in == "dead_letter") {
          hint = " (rejected rows go to the file of the top-level 'dead_letter' key, which no "
                 "node reads)";
        }
        diags.Error(cfg.input_marks[k], cfg.name,
                    fmt::format("{}: input '{}' is not a node of this pipeline{}", cfg.Prefix(), in,
                                hint));
        continue;
      }
      if (decl_nodes[j].role == Role::kSink) {
        diags.Error(
            cfg.input_marks[k], cfg.name,
            fmt::format("{}: input '{}' is a sink; sinks have no output", cfg.Prefix(), in));
        continue;
      }
      if (std::find(nodes[i].inputs.begin(), nodes[i].inputs.end(), j) != nodes[i].inputs.end()) {
        diags.Error(cfg.input_marks[k], cfg.name,
                    fmt::format("{}: input '{}' is listed twice", cfg.Prefix(), in));
        continue;
      }
      nodes[i].inputs.push_back(j);
      nodes[j].outputs.push_back(static_cast<int>(i));
    }
  }

  // Topological order (Kahn); whatever is left is on or behind a cycle.
  std::vector<int> indeg(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) indeg[i] = static_cast<int>(nodes[i].inputs.size());
  std::vector<int> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (indeg[i] == 0) ready.push_back(static_cast<int>(i));
  while (!ready.empty()) {
    int i = ready.front();
    ready.erase(ready.begin());
    plan->topo.push_back(i);
    for (int o : nodes[i].outputs)
      if (--indeg[o] == 0) ready.push_back(o);
  }
  if (plan->topo.size() != nodes.size()) ReportCycles(*plan, indeg, diags);

  // Wiring warnings and errors.
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeConfig& cfg = decl_nodes[i];
    if (cfg.role != Role::kSink && nodes[i].outputs.empty()) {
      diags.Warning(
          cfg.mark, cfg.name,
          fmt::format("{}: nothing reads from this node; its output is discarded", cfg.Prefix()));
    }
  }

  // Instantiate and propagate schemas in topological order.
  for (int i : plan->topo) {
    PlannedNode& pn = nodes[i];
    const NodeConfig& cfg = decl_nodes[i];
    if (!cfg.spec || !cfg.keys_ok) continue;
    // Inputs: all must have planned, and fan-in needs one schema.
    SchemaPtr input;
    bool inputs_ok = true;
    for (size_t k = 0; k < pn.inputs.size(); ++k) {
      const PlannedNode& up = nodes[pn.inputs[k]];
      if (!up.ok) {
        inputs_ok = false;
        continue;
      }
      if (!input) {
        input = up.output_schema;
      } else if (!(*input == *up.output_schema)) {
        diags.Error(cfg.input_marks.empty() ? cfg.mark : cfg.input_marks[k], cfg.name,
                    fmt::format("{}: inputs have different schemas: '{}' has ({}) but '{}' has "
                                "({}); fan-in needs the same fields and types",
                                cfg.Prefix(), decl_nodes[pn.inputs[0]].name, input->ToString(),
                                decl_nodes[pn.inputs[k]].name, up.output_schema->ToString()));
        inputs_ok = false;
      }
    }
    if (cfg.role != Role::kSource && (pn.inputs.empty() || !inputs_ok)) continue;
    pn.input_schema = input;
    try {
      Status st = PlanNode(pn, cfg, input);
      if (!st.ok()) diags.AddStatus(st, cfg.mark, cfg.name);
    } catch (const std::exception& e) {
      // An operator adapter let an exception through: report it rather than crash.
      diags.Error(cfg.mark, cfg.name,
                  fmt::format("{}: internal error while planning: {}", cfg.Prefix(), e.what()));
    }
  }
  CheckPositionCommits(*plan, diags);
  return plan;
}

}  // namespace sluice
