// `smx pretrain|finetune --nproc N`: starts N local processes of this
// executable as the ranks of one run, forwards Ctrl-C (and SIGTERM) to them,
// and ends the rest when one fails. Plain POSIX, no LibTorch.
#pragma once

#include <string>
#include <vector>

#include "model/dist/dist_options.h"

namespace smx::dist {

/// Runs `args` (args[0]: a name for messages; the program is this executable)
/// as ranks 0..nproc-1, each with RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
/// MASTER_ADDR and MASTER_PORT set (the port: options.master_port, or a free
/// one when `pick_port`). Returns 0 when every rank exits 0, else the first
/// failing rank's exit code (128 + signal for a killed one). When a rank fails,
/// the others notice through their collectives and record the failure; any
/// still running after `grace_seconds` get SIGTERM (and SIGCONT: a stopped one
/// must see it), which stops them after their step, and SIGKILL once the
/// collective timeout has passed too.
int launch_local(int nproc, const std::vector<std::string>& args, const DistOptions& options, bool pick_port,
                 double grace_seconds = 5);

/// A TCP port that is free on this machine now.
int free_port();

}  // namespace smx::dist
