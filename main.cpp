// The `sluice` executable: the engine's CLI with the built-in operators.
#include <malloc.h>

#include "engine/cli.h"
#include "operators/builtin.h"

namespace {

// glibc's allocator by default maps each block above a threshold (128 KiB, rising with use)
// with mmap and unmaps it when freed, gives the heap's free top back past 128 KiB, and makes up
// to 8 arenas per core, whose extra heaps are unmapped whenever they empty. A pipeline
// allocates batch-sized blocks (a chunk of Kafka messages, columns, a COPY payload: kilobytes
// to megabytes) and frees them on other threads, batch after batch, so their pages were
// faulted in again and again. Now blocks up to 32 MiB (glibc's largest threshold) come from
// the heap, up to 256 MiB of free heap stay with the process, and two arenas serve all threads
// (small blocks go through each thread's cache first). On the 2-core development VMs this
// halved the page faults and, where faults are dear, cut Sluice's CPU by a third
// (bench/README.md, "Memory allocator").
constexpr int kHeapBlockBytes = 32 << 20;
constexpr int kKeptFreeBytes = 256 << 20;
constexpr int kArenas = 2;

void KeepAllocatorMemory() {
#ifndef SLUICE_TBBMALLOC
  mallopt(M_MMAP_THRESHOLD, kHeapBlockBytes);
  mallopt(M_TRIM_THRESHOLD, kKeptFreeBytes);
  mallopt(M_ARENA_MAX, kArenas);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  KeepAllocatorMemory();
  sluice::Registry registry;
  sluice::RegisterBuiltinOperators(registry);
  return sluice::RunCli(argc, argv, registry);
}
