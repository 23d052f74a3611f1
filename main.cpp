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
//
// The trim threshold does not cover the second arena's heaps (64 MiB regions): glibc unmaps
// one whenever it empties, unless the top pad says to keep that much. `sluice dev-kafka` (the
// mock broker builds multi-megabyte fetch answers on its own threads) faulted up to 120,000
// pages per million messages served because of it, and used up to six times the CPU; a top pad
// of one heap keeps them. The pad is address space, not memory: pages count once touched.
constexpr int kHeapBlockBytes = 32 << 20;
constexpr int kKeptFreeBytes = 256 << 20;
constexpr int kArenas = 2;
constexpr int kTopPadBytes = 64 << 20;  // glibc's heap size on 64-bit (HEAP_MAX_SIZE)

void KeepAllocatorMemory() {
#ifndef SLUICE_TBBMALLOC
  mallopt(M_MMAP_THRESHOLD, kHeapBlockBytes);
  mallopt(M_TRIM_THRESHOLD, kKeptFreeBytes);
  mallopt(M_ARENA_MAX, kArenas);
  mallopt(M_TOP_PAD, kTopPadBytes);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  KeepAllocatorMemory();
  sluice::Registry registry;
  sluice::RegisterBuiltinOperators(registry);
  return sluice::RunCli(argc, argv, registry);
}
