// glibc's allocator, tuned for training loops. LibTorch frees and re-allocates
// the same large activation and gradient buffers every step; by default glibc
// serves blocks above its (dynamic) mmap threshold with fresh mmaps and trims
// the main heap on free, so every step pays for page faults of fresh memory.
// On a 2-core VM this doubled the CPU step time of the demo (22 s of 32 s
// were system time). Keeping freed memory in the process avoids that; the
// price is a resident size that stays at its peak. One arena: a thread other
// than main (the studio trains on a worker thread) would otherwise get its own
// arena, whose heaps glibc shrinks and regrows regardless of the settings
// below; the studio then trained ~20% slower than the CLI.
#pragma once

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace smx {

/// Call once, early in main(), before threads start.
inline void tune_allocator() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);  // every block from the heap (a fixed mmap threshold is capped at 32 MiB)
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  mallopt(M_ARENA_MAX, 1);
#endif
}

}  // namespace smx
