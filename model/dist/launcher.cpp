#include "model/dist/launcher.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace smx::dist {

namespace {

std::atomic<int> g_signal{0};
std::atomic<int> g_signal_count{0};
extern "C" void remember_signal(int s) {
  g_signal = s;
  g_signal_count.fetch_add(1);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int s = WTERMSIG(status);
    const char* name = strsignal(s);
    return "was killed by signal " + std::to_string(s) + (name ? std::string(" (") + name + ")" : "");
  }
  return "ended (status " + std::to_string(status) + ")";
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string e = std::strerror(errno);
    close(fd);
    throw std::runtime_error("finding a free port: " + e);
  }
  close(fd);
  return ntohs(a.sin_port);
}

int launch_local(int nproc, const std::vector<std::string>& args, const DistOptions& options, bool pick_port,
                 double grace_seconds) {
  using Clock = std::chrono::steady_clock;
  const int port = pick_port ? free_port() : options.master_port;
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  // Ctrl-C and SIGTERM reach the launcher alone (each rank is in a process
  // group of its own) and are forwarded once to every rank.
  g_signal = 0;
  g_signal_count = 0;
  struct sigaction sa{}, old_int{}, old_term{};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  std::vector<pid_t> pids(size_t(nproc), -1);
  std::vector<bool> running(size_t(nproc), false);
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::fprintf(stderr, "smx: could not start rank %d: %s\n", r, std::strerror(errno));
      for (int q = 0; q < r; ++q) kill(pids[size_t(q)], SIGKILL);
      for (int q = 0; q < r; ++q) waitpid(pids[size_t(q)], nullptr, 0);
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      return 1;
    }
    if (pid == 0) {
      setpgid(0, 0);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", options.master_addr.c_str(), 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "smx: could not start rank %d: %s\n", r, std::strerror(errno));
      _exit(127);
    }
    pids[size_t(r)] = pid;
    running[size_t(r)] = true;
  }

  int result = 0, live = nproc, forwarded = 0;
  bool failed = false, terminated = false, killed = false;
  Clock::time_point failed_at;
  while (live > 0) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < nproc; ++r) {
        if (pids[size_t(r)] != pid || !running[size_t(r)]) continue;
        running[size_t(r)] = false;
        --live;
        const int code = exit_code_of(status);
        if (code != 0 && !failed) {
          failed = true;
          failed_at = Clock::now();
          result = code;
          if (live > 0)
            std::fprintf(stderr, "smx: rank %d (pid %d) %s; ending the other %d rank%s\n", r, int(pid),
                         describe_status(status).c_str(), live, live == 1 ? "" : "s");
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    const int signals = g_signal_count.load();
    if (signals > forwarded) {
      // The first Ctrl-C asks each rank to stop after its step; a second one kills them.
      const int s = signals >= 2 ? SIGKILL : g_signal.load();
      for (int r = 0; r < nproc; ++r)
        if (running[size_t(r)]) kill(pids[size_t(r)], s);
      forwarded = signals;
    }
    if (failed) {
      const double waited = std::chrono::duration<double>(Clock::now() - failed_at).count();
      if (waited > grace_seconds && !terminated) {
        for (int r = 0; r < nproc; ++r)
          if (running[size_t(r)]) {
            kill(pids[size_t(r)], SIGTERM);
            kill(pids[size_t(r)], SIGCONT);
          }
        terminated = true;
      } else if (waited > 2 * grace_seconds + options.timeout_seconds && !killed) {
        for (int r = 0; r < nproc; ++r)
          if (running[size_t(r)]) {
            std::fprintf(stderr, "smx: rank %d did not end; killing it\n", r);
            kill(pids[size_t(r)], SIGKILL);
          }
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace smx::dist
