"""Two hosts on one machine: two network namespaces joined by a veth pair (10.231.7.1/24 and 10.231.7.2/24), one
node started in each with `ip netns exec`. Needs root and `ip`; `skip_reason()` says in one line why not.

Everything it creates is removed at the end, also on failure, Ctrl-C or SIGTERM (`close` runs from `__exit__`, atexit
and the signal handlers): every process it started is killed by process group, then every process still inside a
namespace (torchrun's workers run in their own sessions), then the namespaces (which removes the veth pair). Every
process carries `ACCEL_COURSE_NETNS=<tag>` in its environment, so `leftovers()` finds any that survived anywhere.

    python tests/netns.py --check      # create, ping-free socket check across the link, remove
"""
from __future__ import annotations
import atexit, os, shutil, signal, socket, subprocess, sys, time
from pathlib import Path

ADDRS = ("10.231.7.1", "10.231.7.2")     # the only addresses ever used: private, inside our own namespaces
PREFIX = 24
TAG_VAR = "ACCEL_COURSE_NETNS"

def _ip(*args, timeout: float = 10, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode: raise RuntimeError(f"ip {' '.join(args)}: {p.stderr.strip() or p.returncode}")
    return p

def skip_reason() -> str | None:
    "None if two network namespaces can be made here, else one line saying why not."
    if os.name != "posix" or not hasattr(os, "geteuid"): return "network namespaces need Linux"
    if os.geteuid() != 0: return "network namespaces need root (run as root, as CI does)"
    if not shutil.which("ip"): return "network namespaces need the `ip` command (iproute2)"
    name = f"acprobe{os.getpid()}"
    try:
        _ip("netns", "add", name)
        _ip("netns", "del", name)
    except Exception as e:
        return f"cannot create a network namespace here: {e}"
    return None

def tree_pids(root: int) -> set[int]:
    "`root` and all its descendants that are alive now (from /proc)."
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit(): continue
        try: ppid = int((d/"stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError): continue
        kids.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p in out: continue
        out.add(p)
        todo += kids.get(p, [])
    return {p for p in out if Path(f"/proc/{p}").exists()}

def tagged_pids(tag: str) -> list[int]:
    "Live processes whose environment holds `ACCEL_COURSE_NETNS=tag` (zombies excluded)."
    want, found = f"{TAG_VAR}={tag}".encode(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid(): continue
        try:
            state = (d/"stat").read_text().rsplit(")", 1)[1].split()[0]
            if want in (d/"environ").read_bytes().split(b"\0") and state != "Z": found.append(int(d.name))
        except (OSError, IndexError): continue
    return found


class TwoHosts:
    "Two network namespaces joined by a veth pair; `start(node, argv)` runs a command on host 0 or 1."
    def __init__(self, logdir: str | os.PathLike | None = None):
        pid = os.getpid()
        self.tag = f"{pid}-{time.time_ns()}"
        self.ns = [f"accel{pid}h0", f"accel{pid}h1"]         # unique per test process
        self.dev = [f"acv{pid}h0", f"acv{pid}h1"]            # interface names: at most 15 characters
        self.addrs, self.procs, self.logs, self.orphans = ADDRS, [], [], []
        self.logdir = Path(logdir) if logdir else None
        self.created, self.closed = [], False

    # ------------------------------------------------------------ set up / tear down
    def __enter__(self):
        atexit.register(self.close)
        self._old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} \
            if _main_thread() else {}
        try: self._create()
        except BaseException: self.close(); raise
        return self

    def __exit__(self, *exc): self.close()

    def _on_signal(self, signum, frame):
        self.close()
        raise KeyboardInterrupt(f"signal {signum}: namespaces removed")

    def _create(self):
        for ns in self.ns:
            _ip("netns", "add", ns)
            self.created.append(ns)
        _ip("link", "add", self.dev[0], "type", "veth", "peer", "name", self.dev[1])
        for ns, dev, addr in zip(self.ns, self.dev, self.addrs):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{addr}/{PREFIX}", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def ns_pids(self, node: int) -> list[int]:
        "Every process inside host `node`'s namespace."
        if self.ns[node] not in self.created: return []
        p = _ip("netns", "pids", self.ns[node], check=False)
        return [int(x) for x in p.stdout.split()] if p.returncode == 0 else []

    def close(self):
        "Kill everything started here (process groups, then whatever is left in the namespaces), remove the namespaces."
        if self.closed: return
        self.closed = True
        for p in self.procs: _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs:
            try: p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired: pass
        for p in self.procs: _signal_group(p, signal.SIGKILL)
        for p in self.procs:
            try: p.wait(5)
            except subprocess.TimeoutExpired: pass
        for node in range(2):                           # torchrun's workers run in sessions of their own
            for pid in self.ns_pids(node):
                self.orphans.append(pid)
                with _quiet(): os.kill(pid, signal.SIGKILL)
        for pid in tagged_pids(self.tag):               # anything else that came from here
            if pid in self.orphans: continue
            self.orphans.append(pid)
            with _quiet(): os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while tagged_pids(self.tag) and time.monotonic() < deadline: time.sleep(0.05)
        for ns in self.created:
            _ip("netns", "del", ns, check=False)
        for f in self.logs:
            with _quiet(): f.close()
        for s, h in getattr(self, "_old", {}).items(): signal.signal(s, h)
        with _quiet(): atexit.unregister(self.close)

    # ------------------------------------------------------------ running nodes
    def start(self, node: int, argv: list[str], env: dict | None = None, name: str | None = None,
              cwd=None) -> subprocess.Popen:
        "Run `argv` inside host `node` (0 or 1), in a process group of its own; output goes to a log file."
        env = {**os.environ, **(env or {}), TAG_VAR: self.tag}
        env = {k: v for k, v in env.items() if v is not None}
        log = open(self._logpath(name or f"node{node}"), "w+b") if self.logdir else subprocess.DEVNULL
        if self.logdir: self.logs.append(log)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[node], *map(str, argv)], env=env, cwd=cwd,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        p.log, p.node = log, node
        self.procs.append(p)
        return p

    def _logpath(self, name: str) -> Path:
        self.logdir.mkdir(parents=True, exist_ok=True)
        return self.logdir/f"{name}.log"

    def output(self, p) -> str:
        "What process `p` printed so far."
        if p.log is subprocess.DEVNULL: return ""
        p.log.flush()
        return Path(p.log.name).read_text(errors="replace")

    def wait(self, procs, timeout: float) -> list[int | None]:
        "Wait up to `timeout` s in all for `procs`; return codes, None for those still running."
        deadline = time.monotonic() + timeout
        for p in procs:
            try: p.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired: pass
        return [p.poll() for p in procs]

    def kill_node(self, node: int, sig=signal.SIGKILL) -> list[int]:
        "Send `sig` to every process of host `node` (its launcher and all its workers), as a machine that dies."
        pids = self.ns_pids(node)
        for pid in pids:
            with _quiet(): os.kill(pid, sig)
        return pids

    def link(self, node: int, up: bool):
        "Take host `node`'s network link down or up (its processes live on, unreachable)."
        _ip("-n", self.ns[node], "link", "set", self.dev[node], "up" if up else "down")


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()

def _signal_group(p, sig):
    with _quiet(): os.killpg(p.pid, sig)

class _quiet:
    def __enter__(self): return self
    def __exit__(self, t, e, tb): return t is not None and issubclass(t, (ProcessLookupError, PermissionError, OSError))


def _self_check() -> int:
    why = skip_reason()
    if why: print(f"skipped: {why}"); return 0
    code = ("import socket,sys; s=socket.socket(); s.settimeout(20); s.bind(('10.231.7.1', 0)); s.listen(); "
            "print(s.getsockname()[1], flush=True); c,a=s.accept(); print('from', a[0], flush=True)")
    with TwoHosts() as h:
        srv = subprocess.Popen(["ip", "netns", "exec", h.ns[0], sys.executable, "-c", code], stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
        h.procs.append(srv)
        port = int(srv.stdout.readline())
        cli = h.start(1, [sys.executable, "-c", f"import socket; socket.create_connection(('10.231.7.1', {port}), 10)"])
        print("client rc", cli.wait(20), "| server:", srv.stdout.readline().strip())
        ns = list(h.ns)
    left = [n for n in ns if n in _ip("netns", "list").stdout]
    print("namespaces left:", left, "| orphans:", h.orphans)
    return 1 if left or h.orphans else 0

if __name__ == "__main__":
    if "--check" in sys.argv: sys.exit(_self_check())
    print(__doc__)
