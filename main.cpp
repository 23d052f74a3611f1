// The `sluice` executable: the engine's CLI with the built-in operators.
#include <malloc.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

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

// The subcommand: the first argument that is neither an option nor --log-format's value.
std::string_view Subcommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--log-format") {
      ++i;
    } else if (!arg.starts_with("-")) {
      return arg;
    }
  }
  return {};
}

// Transparent huge pages for the heap. A pipeline's working set (read-ahead, batches in flight,
// fetch buffers: about 150 MiB on the benchmarks) is touched for the first time while the run
// starts, one 4 KiB page fault at a time: 40,000 faults on a million Kafka messages, a tenth of
// Sluice's CPU where faults are dear (2,500 faults with huge pages). glibc asks the kernel for huge
// pages for its heap when the tunable glibc.malloc.hugetlb=1 is set (the kernel's THP mode
// `madvise`); tunables are read only from GLIBC_TUNABLES at start-up, so `sluice run` and `sluice
// dev-kafka` start themselves once more with it set, and the second start puts the variable back as
// it was, for the processes it starts, and takes back the process name (`ps`, `pkill sluice`) that
// the kernel took from /proc/self/exe. Nothing happens when GLIBC_TUNABLES already names the
// tunable (to opt out: glibc.malloc.hugetlb=0), when the kernel gives huge pages to every mapping
// anyway or to none, under valgrind, or when /proc/self/exe cannot be run (then the run goes on as
// it is).
constexpr char kHugeTunable[] = "glibc.malloc.hugetlb";
constexpr char kSavedTunables[] = "SLUICE_SAVED_GLIBC_TUNABLES";  // "1"+value, or "0": unset

bool KernelHugePagesOnRequest() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(f, mode);
  return mode.find("[madvise]") != std::string::npos;
}

void StartWithHugePageHeap(int argc, char** argv) {
  if (const char* saved = std::getenv(kSavedTunables)) {  // the second start
    if (saved[0] == '1') {
      setenv("GLIBC_TUNABLES", saved + 1, 1);
    } else {
      unsetenv("GLIBC_TUNABLES");
    }
    unsetenv(kSavedTunables);
    // The name the first start had: the kernel's is the base name of the file executed (cut
    // to 15 bytes), which was argv[0]'s when a shell or a test started Sluice.
    if (argc > 0 && argv[0] && argv[0][0]) {
      const char* slash = std::strrchr(argv[0], '/');
      prctl(PR_SET_NAME, slash ? slash + 1 : argv[0], 0, 0, 0);
    }
    return;
  }
  std::string_view command = Subcommand(argc, argv);
  if (command != "run" && command != "dev-kafka") return;
  const char* found = std::getenv("GLIBC_TUNABLES");
  if (found && std::strstr(found, kHugeTunable)) return;
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload && std::strstr(preload, "vgpreload")) return;  // valgrind would lose the process
  if (!KernelHugePagesOnRequest()) return;
  const bool had = found != nullptr;
  const std::string tunables = had ? found : "";
  std::string wanted = std::string(kHugeTunable) + "=1";
  if (!tunables.empty()) wanted = tunables + ":" + wanted;
  setenv(kSavedTunables, (had ? "1" + tunables : std::string("0")).c_str(), 1);
  setenv("GLIBC_TUNABLES", wanted.c_str(), 1);
  execv("/proc/self/exe", argv);
  // Not started again: go on with the environment as it was.
  if (had) {
    setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
  unsetenv(kSavedTunables);
}

}  // namespace

int main(int argc, char** argv) {
#ifndef SLUICE_TBBMALLOC
  StartWithHugePageHeap(argc, argv);
#endif
  KeepAllocatorMemory();
  sluice::Registry registry;
  sluice::RegisterBuiltinOperators(registry);
  return sluice::RunCli(argc, argv, registry);
}
