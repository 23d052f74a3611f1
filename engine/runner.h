// Running a planned pipeline on a oneTBB flow graph.
//
// Shape: a pipeline's only source is an input_node (its reader, serial, may block) feeding a
// limiter_node that bounds the batches in flight, then a decode function_node (parallel when
// the format allows). With several sources, each reader runs on a thread of its own instead,
// which keeps the same bound and puts each chunk into the decode node, so that a source waiting
// for input holds up no other.
// Transforms are function_nodes, parallel when their spec says so; one whose runtime blocks()
// (a remote model call) is an async_node that hands batches to threads of the node's own. Each
// sink prepares batches in a parallel function_node and writes them on a thread of its own,
// behind a serial async_node (and a sequencer_node when exactly one source path reaches it, so
// it sees batches in read order): the oneTBB workers never wait for a server. A sink that
// settles (a Kafka producer) is handed the next batch before the earlier ones are durable when
// batches are waiting for it or being prepared for it, and settles them all when none is. A
// batch's ticket is acknowledged once per sink path, once durable there; the last
// acknowledgement releases the source's slot. Stop requests drain: sources stop reading,
// in-flight batches finish, sinks flush.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/dead_letter.h"
#include "engine/pipeline.h"

namespace sluice {

struct NodeStats {
  std::string name;
  std::string type;
  Role role = Role::kTransform;
  uint64_t rows_in = 0;
  uint64_t rows_out = 0;
  uint64_t rejected = 0;
};

struct RunSummary {
  uint64_t records_read = 0;  // raw records the sources read
  uint64_t rows_written = 0;  // rows the sinks wrote, summed over sinks
  uint64_t dead_letters = 0;
  double seconds = 0;
  std::string dead_letter_path;
  std::vector<NodeStats> nodes;
  bool stopped = false;  // a stop was requested before the input ended
  Status status;         // why the run failed, after draining; ok when it did not
};

// Counters the progress display reads while the pipeline runs.
struct LiveCounters {
  std::atomic<uint64_t> records_read{0};
  std::atomic<uint64_t> rows_written{0};
  std::atomic<uint64_t> rejected{0};
};

// Where a run is, for /readyz and sluice_pipeline_ready: set by RunPipeline.
struct Readiness {
  enum State { kStarting, kRunning, kStopped };
  std::atomic<int> state{kStarting};
  // The run's stop request: a running pipeline whose stop was asked for is draining.
  const std::atomic<bool>* stop = nullptr;
  bool Ready() const { return state.load() == kRunning && !(stop && stop->load()); }
  const char* Describe() const {
    if (state.load() == kStarting) return "starting";
    if (state.load() == kStopped) return "stopped";
    return Ready() ? "running" : "draining";
  }
};

struct RunOptions {
  // Set from a signal handler or another thread to drain and stop.
  const std::atomic<bool>* stop = nullptr;
  // Overrides the pipeline's dead-letter file (tests keep dead letters in memory).
  DeadLetter* dead_letter = nullptr;
  LiveCounters* live = nullptr;
  // 0: oneTBB's default (all cores).
  int threads = 0;
  // Updated as the run starts and ends, when given.
  Readiness* readiness = nullptr;
};

// Builds every runtime, runs to the end of input (or a stop request) and closes the sinks.
// Returns an error when building fails; a failure while running (a sink that fails for good)
// is in the summary's status, with the counts of what was done. Rejected rows are not errors.
Result<RunSummary> RunPipeline(Plan& plan, const RunOptions& options);

}  // namespace sluice
