// OpenMP's idle threads, told to spin less. Debian's LibTorch runs its
// intra-op parallel loops on GNU OpenMP, whose threads spin for 300,000
// iterations after each loop by default; its matrix products run on
// OpenBLAS's own threads. With both on the same cores the spinning OpenMP
// threads take the cores the BLAS threads need. Measured on a 2-core machine
// (`smx bench -p bert-base --no-train`, batch 2 x 512, 2 threads), inference
// took 1137-1234 ms/example with the default, 759-767 with
// OMP_WAIT_POLICY=PASSIVE (no spinning) and 710-767 with GOMP_SPINCOUNT=30000
// (10000: 760-767). Passive waiting made the small demo model train about 8%
// slower (its many small loops pay for each wake-up); 30000 kept it as fast as
// the default (whole `smx pretrain --preset demo --steps 60`: 0.99x the time).
// libgomp reads these variables when it is loaded, before main() runs, so the
// only way to set them for this process is to start it again with them set.
#pragma once

#include <unistd.h>

#include <cstdlib>

namespace smx {

/// Call first in main(): unless GOMP_SPINCOUNT or OMP_WAIT_POLICY is already
/// set (a user's choice is kept), sets GOMP_SPINCOUNT=30000 and re-executes
/// this program with the same arguments. Returns only when nothing was to be
/// done or the re-execution failed (the program then goes on as it is).
inline void shorten_omp_spinning(char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") || std::getenv("OMP_WAIT_POLICY")) return;
  setenv("GOMP_SPINCOUNT", "30000", 1);
  execv("/proc/self/exe", argv);
}

}  // namespace smx
