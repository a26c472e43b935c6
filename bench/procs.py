"""Processes for the side-by-side runs of `bench/compare`: servers started pinned to a core
and stopped with their whole process group, and what is read about them from /proc (CPU
ticks, resident memory, descriptors) or counted by `perf stat` (system calls).

A module of its own so that `compare` holds the scenarios and the runs, and this what it
measures them with.
"""

import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid):
    """pid and all its descendants (nginx's worker is a child of its master)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_ticks(pids):
    """utime + stime of the processes, in clock ticks (all threads of each process)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
        except (OSError, IndexError, ValueError):
            pass
    return total


def busy_ticks():
    """Ticks all CPUs spent not idle, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def fd_count(pids):
    n = 0
    for p in pids:
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return n


class Server:
    """A server started pinned to the server core, stopped on exit from the `with` block.

    `spec` is a command template (`cmd`), with `files` to write into the server's own
    temporary folder before it starts and `vars`, more substitutions for both; `ctx` gives the
    binaries' folders (`bin`, `release`) and the cores (`server_cpu`, `client_cpu`)."""

    def __init__(self, name, spec, ctx):
        self.name, self.spec, self.ctx = name, spec, ctx
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.proc = None
        self.tmp = None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix=f"compare-{self.name}-")
        subst = dict(addr=self.addr, host="127.0.0.1", port=self.port, bin=self.ctx.bin,
                     release=self.ctx.release, root=ROOT, tmp=self.tmp)
        subst.update(self.spec.get("vars", {}))
        # Files the server reads at start (nginx's configuration), written into its folder.
        for name, template in self.spec.get("files", {}).items():
            with open(os.path.join(self.tmp, name), "w") as f:
                f.write(template.format(**subst))
        argv = shlex.split(self.spec["cmd"].format(**subst))
        self.log = open(os.path.join(self.tmp, "server.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(self.ctx.server_cpu)] + argv,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable(f"{self.name} exited with {self.proc.returncode}: "
                                  f"{self.output()[-300:].strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                time.sleep(0.2)  # let the server settle (nginx starts its worker)
                return
            except OSError:
                time.sleep(0.05)
        raise Unavailable(f"{self.name} did not listen on {self.addr} within {timeout} s")

    def output(self):
        try:
            with open(os.path.join(self.tmp, "server.log")) as f:
                return f.read()
        except OSError:
            return ""

    def pids(self):
        return process_tree(self.proc.pid)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            # The whole process group: nginx's worker goes with its master.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Unavailable(Exception):
    """A server that cannot be run here (e.g. evdrive's command does not exist yet)."""


class SyscallCounter:
    """perf stat counting syscall tracepoints of the server's processes for one run."""

    def __init__(self, ctx, pids):
        self.ctx, self.pids = ctx, pids
        self.proc = None

    def __enter__(self):
        if not self.ctx.tracepoints:
            return self
        self.out = tempfile.NamedTemporaryFile(prefix="compare-perf-", delete=False)
        self.out.close()
        events = []
        for tp in self.ctx.tracepoints:
            events += ["-e", tp]
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(self.ctx.client_cpu), "perf", "stat", "-x", ",",
             "-o", self.out.name, "-p", ",".join(map(str, self.pids))] + events,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # perf needs a moment to attach its counters
        return self

    def __exit__(self, *exc):
        # Only left running when the client failed before stop().
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc and os.path.exists(self.out.name):
            os.unlink(self.out.name)

    def stop(self):
        """Stops counting; returns {tracepoint short name: count}, or {} without perf."""
        if not self.proc:
            return {}
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        counts = {}
        with open(self.out.name) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) < 3 or not parts[2]:
                    continue
                name = parts[2].split(":")[-1].replace("sys_enter_", "")
                try:
                    counts[name] = int(parts[0])
                except ValueError:
                    counts[name] = 0  # "<not counted>"
        return counts
