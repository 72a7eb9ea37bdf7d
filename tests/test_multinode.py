"""Beyond one machine: two hosts (network namespaces joined by a veth pair, tests/netns.py), one node in each, running
the multi-node commands of the README as written with the namespaces' addresses (10.231.7.1 is the main node).
Every test removes its namespaces and checks that no process it started is left. Skipped, with one line, where
network namespaces cannot be created (not root, no `ip`)."""
import inspect, json, os, shutil, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
from netns import TwoHosts, skip_reason, tagged_pids, ADDRS

REPO = Path(__file__).resolve().parents[1]
WHY_NOT = skip_reason()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"two-host tests: {WHY_NOT}")
MAIN = ADDRS[0]
PORT = 29500           # the README's port: free in a fresh namespace
TIMEOUT = 20           # ACCEL_COURSE_DIST_TIMEOUT / --rdzv-conf timeout for the failure tests, in seconds
SLACK = 60             # process start-up (torch imports on 2 busy cores) on top of a timeout
PY = sys.executable
TORCHRUN = [PY, "-m", "torch.distributed.run"]

def env(**kw):
    "The nodes' environment: CPU workers, one thread each, this checkout first on the path, no interface preset."
    base = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "ACCELERATE_USE_CPU": "yes",
            "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "GLOO_SOCKET_IFNAME": None, "NCCL_SOCKET_IFNAME": None,
            "ACCEL_COURSE_DEBUG": None, "ACCEL_COURSE_DIST_TIMEOUT": None}
    return {**base, **kw}

@pytest.fixture
def hosts(tmp_path):
    with TwoHosts(tmp_path/"logs") as h:
        yield h
    assert not h.orphans, f"processes left behind (killed at teardown): {h.orphans}"
    assert not tagged_pids(h.tag)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(ns in listed for ns in h.ns), listed

def finish(h, procs, limit):
    "Wait up to `limit` s for every node to exit on its own; then nothing may be left in either namespace."
    t0 = time.monotonic()
    rcs = h.wait(procs, limit)
    took = time.monotonic() - t0
    logs = "\n".join(f"--- node {p.node}\n{h.output(p)[-3000:]}" for p in procs)
    assert None not in rcs, f"a node still runs after {limit} s (a hang): {rcs}\n{logs}"
    deadline = time.monotonic() + 10
    while (h.ns_pids(0) or h.ns_pids(1)) and time.monotonic() < deadline: time.sleep(0.2)
    assert not h.ns_pids(0) and not h.ns_pids(1), f"orphans after the nodes exited: {h.ns_pids(0) + h.ns_pids(1)}"
    return rcs, took, logs

def files_under(folder: Path) -> list:
    return [f for f in folder.rglob("*") if f.is_file()] if folder.exists() else []

def xfail_if_staging_left(folder: Path):
    "03_cli shares the staging folder's path relative to the main node's cwd; other nodes create it and leave it empty."
    left = [d.name for d in folder.rglob(".*staging*")] if folder.exists() else []
    if left: pytest.xfail(f"accel-course run leaves an empty staging folder on the other node: {left} (03_cli)")

def same_metrics(a: dict, b: dict) -> bool:
    "Two metrics.json equal in everything but the wall-clock `runtime_s`."
    return {k: v for k, v in a.items() if k != "runtime_s"} == {k: v for k, v in b.items() if k != "runtime_s"}

def last_error_line(text: str) -> str:
    lines = [l for l in text.splitlines() if l.strip() and "hostname of the client socket" not in l]
    return lines[-1] if lines else ""

# ------------------------------------------------------------------ the harness itself

def test_harness_removes_everything_also_what_escaped_the_process_group(tmp_path):
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
            "start_new_session=True); time.sleep(120)")
    with TwoHosts(tmp_path) as h:
        for node in (0, 1): h.start(node, [PY, "-c", code])
        deadline = time.monotonic() + 20
        while (len(h.ns_pids(0)) < 2 or len(h.ns_pids(1)) < 2) and time.monotonic() < deadline: time.sleep(0.1)
        assert len(h.ns_pids(0)) == 2 and len(h.ns_pids(1)) == 2
        names = list(h.ns)
    assert len(h.orphans) == 2              # the two children in sessions of their own: found and killed
    assert not tagged_pids(h.tag)
    assert not set(names) & set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())

# ------------------------------------------------------------------ the loopback trap

TRAP = textwrap.dedent("""
    import datetime, os, socket, torch.distributed as dist
    print("hostname resolves to", socket.gethostbyname(socket.gethostname()), flush=True)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=%d))
    print("WORLD", dist.get_world_size(), flush=True)
    dist.destroy_process_group()
""" % TIMEOUT)

def trap_nodes(h, tmp_path, **kw):
    script = tmp_path/"trap.py"
    script.write_text(TRAP)
    return [h.start(r, [*TORCHRUN, "--nnodes", 2, "--node_rank", r, "--master_addr", MAIN, "--master_port", PORT,
                        "--nproc_per_node", 1, "--rdzv-conf", f"timeout={TIMEOUT}", script],
                    env=env(**{k: v.format(dev=h.dev[r]) for k, v in kw.items()}), name=f"node{r}") for r in (0, 1)]

def test_loopback_trap_reproduced(hosts, tmp_path):
    """The issue's failure: each host's name resolves to 127.0.0.1, so gloo advertises loopback to the other host.
    Node 0 fails with a raw gloo error; node 1 keeps waiting beyond the process group's own timeout (seen with torch
    2.13: still waiting 60 s after its 20 s timeout), which is why `multinode_env` must act before the group forms."""
    p0, p1 = trap_nodes(hosts, tmp_path)
    (rc0,) = hosts.wait([p0], TIMEOUT + SLACK)
    out0, out1 = hosts.output(p0), hosts.output(p1)
    assert "hostname resolves to 127.0.0.1" in out0
    assert "WORLD 2" not in out0 + out1, out0[-3000:]        # the group never forms: the trap, whatever comes next
    if rc0 is not None:   # usually node 0 fails: gloo's connectFullMesh to 127.0.0.1, or c10d on the loopback name
        assert rc0 != 0 and ("remote=[127.0.0.1]" in out0 or "hostname of the client socket" in out0), out0[-3000:]
    (rc1,) = hosts.wait([p1], 10)
    print("node 0:", f"exited with {rc0}" if rc0 is not None else f"still waiting after {TIMEOUT + SLACK} s (a busy "
          "machine: the raw error comes later)", "| node 1:", "still waiting" if rc1 is None else f"exited with {rc1}")
    for p in (p0, p1): p.send_signal(signal.SIGTERM)   # torchrun's agent stops its workers on SIGTERM
    finish(hosts, [p0, p1], 30)

def test_loopback_trap_fixed_by_naming_the_interface(hosts, tmp_path):
    rcs, took, logs = finish(hosts, trap_nodes(hosts, tmp_path, GLOO_SOCKET_IFNAME="{dev}"), TIMEOUT + SLACK)
    assert rcs == [0, 0] and logs.count("WORLD 2") == 2, logs

# ------------------------------------------------------------------ launch() from the notebook API

JOB = textwrap.dedent("""
    import json, sys
    from accel_course.launch import launch, toy_job
    rank, nodes, addr, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    r = launch(toy_job, 517, 2, 32, num_processes=2, num_nodes=nodes, node_rank=rank, master_addr=addr, use_cpu=True)
    open(out, "w").write(json.dumps(r))
""")

def launch_nodes(h, tmp_path, nodes=(0, 1), addrs=(MAIN, MAIN), **kw):
    (tmp_path/"job.py").write_text(JOB)
    return [h.start(r, [PY, tmp_path/"job.py", r, 2, addrs[r], tmp_path/f"r{r}.json"], env=env(**kw), name=f"node{r}")
            for r in nodes]

def test_launch_two_nodes_equals_one_node(hosts, tmp_path):
    from accel_course.launch import launch, toy_job
    rcs, took, logs = finish(hosts, launch_nodes(hosts, tmp_path), 240)
    assert rcs == [0, 0], logs
    assert "launch: GLOO_SOCKET_IFNAME=" in logs          # the loopback trap, avoided without the user's help
    r0, r1 = (json.loads((tmp_path/f"r{r}.json").read_text()) for r in (0, 1))
    assert r1 is None                                      # launch returns rank 0's result on node 0 only
    assert r0["world_size"] == 4 and r0["distributed_type"].endswith("MULTI_CPU")
    assert len(r0["digests"]) == 4 and len(set(r0["digests"])) == 1            # identical weights on all 4 ranks
    one = launch(toy_job, 517, 2, 32, num_processes=4, use_cpu=True, verbose=False)   # one machine, same global batch
    assert (r0["val_loss"], r0["digests"]) == (one["val_loss"], one["digests"])
    assert r0["n_val_gathered"] == r0["n_val"] == 104

def test_launch_world_that_never_assembles_fails_in_bounded_time(hosts, tmp_path):
    rcs, took, logs = finish(hosts, launch_nodes(hosts, tmp_path, nodes=(0,), ACCEL_COURSE_DIST_TIMEOUT=str(TIMEOUT)),
                             TIMEOUT + SLACK)
    assert rcs == [1]
    line = last_error_line(logs)
    assert line.startswith("accel_course.launch.LaunchError: launch: node 0 of 2"), line
    assert "1/2 clients joined" in line, line
    assert f"bounded by {TIMEOUT} s" in line and not (tmp_path/"r0.json").exists()

def test_launch_wrong_main_address_fails_in_bounded_time(hosts, tmp_path):
    procs = launch_nodes(hosts, tmp_path, nodes=(1,), addrs=(MAIN, "10.231.7.3"),
                         ACCEL_COURSE_DIST_TIMEOUT=str(TIMEOUT))
    rcs, took, logs = finish(hosts, procs, TIMEOUT + SLACK)
    line = last_error_line(logs)
    assert rcs == [1] and "LaunchError: launch: node 1 of 2 (main node 10.231.7.3:29500" in line, line

# ------------------------------------------------------------------ the CLI under torchrun, as the README writes it

REFERENCE = {}      # metrics of an uninterrupted run, kept for the restart test

def cli_guarded() -> bool:
    "Whether `accel-course run` checks the loopback trap itself (03_cli's init_distributed calls multinode_env)."
    from accel_course import cli
    return "multinode_env" in inspect.getsource(cli.init_distributed)

def torchrun_cli(h, tmp_path, r, nnodes=2, nproc=2, addr=MAIN, extra=(), **kw):
    cwd = tmp_path/f"node{r}"          # each node its own folder: what a node writes stays in its own folder
    cwd.mkdir(exist_ok=True)
    return h.start(r, [*TORCHRUN, "--nnodes", nnodes, "--node_rank", r, "--master_addr", addr, "--master_port", PORT,
                       "--nproc_per_node", nproc, *extra, "-m", "accel_course.cli", "run", "housing", "--fast",
                       "--out", "runs/housing"], env=env(**kw), name=f"node{r}", cwd=cwd)

@pytest.mark.slow
@pytest.mark.parametrize("ifname", ["given", "guard"])
def test_readme_torchrun_two_nodes(hosts, tmp_path, ifname):
    if ifname == "guard" and not cli_guarded():
        pytest.skip("accel-course run does not call launch.multinode_env yet (03_cli's init_distributed)")
    procs = [torchrun_cli(hosts, tmp_path, r, GLOO_SOCKET_IFNAME=hosts.dev[r] if ifname == "given" else None)
             for r in (0, 1)]
    rcs, took, logs = finish(hosts, procs, 420)
    assert rcs == [0, 0], logs
    assert "accel-course: 4 processes on CPU" in logs
    out = tmp_path/"node0"/"runs"/"housing"
    m = json.loads((out/"metrics.json").read_text())
    assert json.loads((out/".accel-course-run.json").read_text())["world_size"] == 4
    assert not files_under(tmp_path/"node1"/"runs")           # rank 0 alone writes the outputs
    if ifname == "guard": return xfail_if_staging_left(tmp_path/"node1"/"runs")
    # one machine, 4 processes: the same global batch and seed give the same metrics
    one = hosts.start(0, [*TORCHRUN, "--nproc_per_node", 4, "--master_port", PORT + 1, "-m", "accel_course.cli", "run",
                          "housing", "--fast", "--out", tmp_path/"one"], env=env(), name="one_node")
    (rc,), _, logs1 = finish(hosts, [one], 420)
    assert rc == 0, logs1
    assert same_metrics(json.loads((tmp_path/"one"/"metrics.json").read_text()), m)
    REFERENCE["housing --fast, world 4"] = m
    xfail_if_staging_left(tmp_path/"node1"/"runs")

def accelerate_cli(h, tmp_path, r, how):
    cwd = tmp_path/f"node{r}"
    cwd.mkdir(exist_ok=True)
    if how == "flags":
        args = ["--multi_gpu", "--num_machines", 2, "--machine_rank", r, "--num_processes", 4,
                "--main_process_ip", MAIN, "--main_process_port", PORT]
    else:   # the repository's config, edited as its header says: this cluster's main address and process count
        cfg = (REPO/"accelerate_configs"/"multi_node.yaml").read_text()
        cfg = cfg.replace("main_process_ip: 10.0.0.1", f"main_process_ip: {MAIN}")
        cfg = cfg.replace("num_processes: 16", "num_processes: 4")
        (cwd/"multi_node.yaml").write_text(cfg)
        args = ["--config_file", cwd/"multi_node.yaml", "--machine_rank", r]
    return h.start(r, [shutil.which("accelerate"), "launch", *args, "-m", "accel_course.cli", "run", "housing",
                       "--fast", "--out", "runs/housing"],
                   env=env(GLOO_SOCKET_IFNAME=h.dev[r]), name=f"node{r}", cwd=cwd)

@pytest.mark.slow
@pytest.mark.parametrize("how", ["flags", "config"])
def test_readme_accelerate_launch_two_nodes(hosts, tmp_path, how):
    "`accelerate launch --multi_gpu --num_machines 2 ...` and `--config_file accelerate_configs/multi_node.yaml`, CPU."
    if how == "flags" and not os.environ.get("ACCEL_COURSE_MULTINODE_ALL"):
        pytest.skip("the same launcher as the config variant; ACCEL_COURSE_MULTINODE_ALL=1 runs it too (2 min)")
    rcs, took, logs = finish(hosts, [accelerate_cli(hosts, tmp_path, r, how) for r in (0, 1)], 420)
    assert rcs == [0, 0], logs
    assert "accel-course: 4 processes on CPU" in logs
    out = tmp_path/"node0"/"runs"/"housing"
    assert json.loads((out/".accel-course-run.json").read_text())["world_size"] == 4
    assert (out/"metrics.json").exists() and not files_under(tmp_path/"node1"/"runs")
    xfail_if_staging_left(tmp_path/"node1"/"runs")

def test_torchrun_wrong_main_address_fails_in_bounded_time(hosts, tmp_path):
    p = torchrun_cli(hosts, tmp_path, 1, addr="10.231.7.3", extra=["--rdzv-conf", f"timeout={TIMEOUT}"])
    (rc,), took, logs = finish(hosts, [p], TIMEOUT + SLACK)
    assert rc == 1 and "10.231.7.3, 29500" in last_error_line(logs), last_error_line(logs)
    assert not files_under(tmp_path/"node1"/"runs")

def test_torchrun_port_in_use_on_the_main_node(hosts, tmp_path):
    hold = textwrap.dedent(f"""
        import socket, subprocess, sys
        s = socket.socket(); s.bind(("0.0.0.0", {PORT})); s.listen()   # someone else holds the port
        sys.exit(subprocess.call(sys.argv[1:]))
    """)
    (tmp_path/"hold.py").write_text(hold)
    (tmp_path/"node0").mkdir()
    args = [*TORCHRUN, "--nnodes", 2, "--node_rank", 0, "--master_addr", MAIN, "--master_port", PORT,
            "--nproc_per_node", 2, "--rdzv-conf", f"timeout={TIMEOUT}", "-m", "accel_course.cli", "run", "housing",
            "--fast", "--out", "runs/housing"]
    p0 = hosts.start(0, [PY, tmp_path/"hold.py", *args], env=env(), name="node0", cwd=tmp_path/"node0")
    p1 = torchrun_cli(hosts, tmp_path, 1, extra=["--rdzv-conf", f"timeout={TIMEOUT}"])
    rcs, took, logs = finish(hosts, [p0, p1], TIMEOUT + SLACK)
    assert rcs == [1, 1]
    assert "EADDRINUSE" in last_error_line(hosts.output(p0)), hosts.output(p0)[-2000:]
    assert not files_under(tmp_path/"node0"/"runs") and not files_under(tmp_path/"node1"/"runs")

# ------------------------------------------------------------------ a node dies

@pytest.mark.slow
def test_node_killed_mid_run_survivor_fails_fast_naming_it(hosts, tmp_path):
    "SIGKILL every process of node 1 during training: node 0 stops within seconds, each rank naming the lost host."
    procs = [torchrun_cli(hosts, tmp_path, r, extra=["--rdzv-conf", f"timeout={TIMEOUT + SLACK}"],
                          GLOO_SOCKET_IFNAME=hosts.dev[r]) for r in (0, 1)]
    deadline = time.monotonic() + 300
    while "processes on CPU" not in hosts.output(procs[0]) and time.monotonic() < deadline:
        assert procs[0].poll() is None, hosts.output(procs[0])[-3000:]
        time.sleep(0.2)
    time.sleep(5)                                  # into the cross-validation: DDP fits all-reduce every step
    assert hosts.kill_node(1)
    t_kill = time.monotonic()
    (rc0,) = hosts.wait([procs[0]], 120)
    took = time.monotonic() - t_kill
    out0 = hosts.output(procs[0])
    assert rc0 == 1, out0[-3000:]
    errors = [l for l in out0.splitlines() if l.startswith("accel-course: error:")]
    # one line per rank; it names the lost host when gloo reports the peer, else gloo's lost-connection message
    assert errors and all("10.231.7.2" in l or "Connection" in l for l in errors), errors or out0[-3000:]
    print(f"node 0 stopped {took:.1f} s after node 1 was killed: {errors[0][:160]}")
    finish(hosts, procs, 30)
    assert not (tmp_path/"node0"/"runs"/"housing").exists()           # no partial --out
    assert not files_under(tmp_path/"node0"/"runs")

@pytest.mark.slow
def test_link_down_without_restarts_both_nodes_stop_at_the_timeout_saying_why(hosts, tmp_path):
    """Take node 1's link down during training and leave it down: no connection is closed, so each side learns of the
    loss only when a collective times out; both nodes then stop (no hang), every rank with one line that says what the
    timeout means, and nothing is written to --out."""
    procs = [torchrun_cli(hosts, tmp_path, r, ACCEL_COURSE_DIST_TIMEOUT=str(TIMEOUT), GLOO_SOCKET_IFNAME=hosts.dev[r])
             for r in (0, 1)]
    deadline = time.monotonic() + 300
    while "processes on CPU" not in hosts.output(procs[0]) and time.monotonic() < deadline:
        assert procs[0].poll() is None, hosts.output(procs[0])[-3000:]
        time.sleep(0.2)
    time.sleep(5)                                  # into the cross-validation: DDP fits all-reduce every step
    hosts.link(1, up=False)
    t_down = time.monotonic()
    rcs, _, logs = finish(hosts, procs, TIMEOUT + SLACK + 60)
    took = time.monotonic() - t_down
    assert rcs[0] != 0 and rcs[1] != 0, logs
    for p in procs:
        errors = [l for l in hosts.output(p).splitlines() if l.startswith("accel-course: error:")]
        assert errors and all("for another process: a node stopped or its network is down" in l for l in errors), \
            errors or logs
    print(f"link down: both nodes stopped {took:.1f} s later (timeout {TIMEOUT} s): {errors[0][:200]}")
    assert not files_under(tmp_path/"node0"/"runs")                   # no partial --out

def uninterrupted(h, tmp_path) -> dict:
    "metrics.json of an uninterrupted one-machine run with the same world (4) and seed (kept from the README test)."
    ref = REFERENCE.get("housing --fast, world 4")
    if ref is None:      # this test run alone: make one
        one = h.start(0, [*TORCHRUN, "--nproc_per_node", 4, "--master_port", PORT + 1, "-m", "accel_course.cli",
                          "run", "housing", "--fast", "--out", tmp_path/"one"], env=env(), name="one_node")
        (rc,), _, logs = finish(h, [one], 420)
        assert rc == 0, logs
        ref = json.loads((tmp_path/"one"/"metrics.json").read_text())
    return ref

def c10d_node(h, tmp_path, r, name, **kw):
    "The README's elastic command: c10d rendezvous on the main node, one restart allowed, this host's own address."
    cwd = tmp_path/name
    cwd.mkdir(exist_ok=True)
    return h.start(r, [*TORCHRUN, "--nnodes", 2, "--nproc_per_node", 2, "--rdzv-backend", "c10d",
                       "--rdzv-endpoint", f"{MAIN}:{PORT}", "--rdzv-id", "housing", "--max-restarts", 1,
                       "--local-addr", h.addrs[r],
                       "--rdzv-conf", f"join_timeout={TIMEOUT + SLACK},is_host={int(r == 0)}",
                       "-m", "accel_course.cli", "run", "housing", "--fast", "--out", tmp_path/"out",
                       "--checkpoints", tmp_path/"ck", "--checkpoint-every", 2],
                   env=env(GLOO_SOCKET_IFNAME=h.dev[r], TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1", LOGLEVEL="INFO", **kw),
                   name=name, cwd=cwd)

@pytest.mark.slow
def test_node_dies_and_the_restarted_job_finishes_with_the_same_metrics(hosts, tmp_path):
    """SIGKILL every process of node 1 mid-run, start node 1 again (what a cluster scheduler does): torchrun's agent on
    node 0 restarts its workers, the new rendezvous takes the new node in, and the job resumes from the newest
    checkpoints of `--checkpoints` (the fits already done restore their weights, the interrupted one continues at its
    last saved step) to the same metrics as an uninterrupted run."""
    procs = [c10d_node(hosts, tmp_path, r, f"node{r}") for r in (0, 1)]
    t0 = time.monotonic()
    while not any("processes on CPU" in hosts.output(p) for p in procs) and time.monotonic() - t0 < 300:
        assert procs[0].poll() is None, hosts.output(procs[0])[-3000:]
        time.sleep(0.2)
    t_up = time.monotonic() - t0
    saved = tmp_path/"ck"/"housing"/"fit-001"/"checkpoints"/"last"/"fit_state.json"   # the 2nd model is training
    while not saved.exists() and time.monotonic() - t0 < 300:
        assert procs[0].poll() is None, hosts.output(procs[0])[-3000:]
        time.sleep(0.05)
    assert saved.exists(), "no checkpoint of the second fit within 300 s"
    assert hosts.kill_node(1)
    t_kill = time.monotonic()
    time.sleep(3)
    procs.append(c10d_node(hosts, tmp_path, 1, "node1b"))
    rcs, _, logs = finish(hosts, [procs[0], procs[2]], 420)
    print(f"world up {t_up:.1f} s; after the kill the job took {time.monotonic() - t_kill:.1f} s more")
    assert rcs == [0, 0], logs
    # node 0's agent restarted its workers: after a gloo error naming the lost peer, or (when the new node 1 joined
    # first) on the membership change -- which one comes first is a matter of timing; both log this line
    assert "will restart worker group" in hosts.output(procs[0]), hosts.output(procs[0])[-3000:]
    rounds = sum(hosts.output(p).count("accel-course: 4 processes on CPU") for p in procs)
    assert rounds == 2, logs                                # the job started twice: before and after the kill
    after = hosts.output(procs[0]) + hosts.output(procs[2])
    assert "resumed from" in after and "fit-000/checkpoints/last" in after, logs   # not from the start
    m = json.loads((tmp_path/"out"/"metrics.json").read_text())
    assert same_metrics(m, uninterrupted(hosts, tmp_path))

@pytest.mark.slow
def test_link_down_longer_than_the_timeout_and_the_job_finishes_with_the_same_metrics(hosts, tmp_path):
    """Take node 1's link down (no process dies, no RST: its peers just stop hearing it) for longer than the collective
    timeout, then up again. Each side's collectives fail at `ACCEL_COURSE_DIST_TIMEOUT`, torchrun's agents restart
    their workers, the world forms again and the job resumes from the newest checkpoints to the same metrics as an
    uninterrupted run."""
    procs = [c10d_node(hosts, tmp_path, r, f"node{r}", ACCEL_COURSE_DIST_TIMEOUT=str(TIMEOUT)) for r in (0, 1)]
    t0 = time.monotonic()
    saved = tmp_path/"ck"/"housing"/"fit-001"/"checkpoints"/"last"/"fit_state.json"   # the 2nd model is training
    while not saved.exists() and time.monotonic() - t0 < 300:
        assert procs[0].poll() is None and procs[1].poll() is None, hosts.output(procs[0])[-3000:]
        time.sleep(0.05)
    assert saved.exists(), "no checkpoint of the second fit within 300 s"
    hosts.link(1, up=False)
    t_down = time.monotonic()
    time.sleep(TIMEOUT + 10)                       # longer than the collective timeout
    hosts.link(1, up=True)
    rcs, _, logs = finish(hosts, procs, 420)
    print(f"link down {TIMEOUT + 10} s at {t_down - t0:.1f} s; the job finished {time.monotonic() - t_down:.1f} s "
          "after the link went down")
    assert rcs == [0, 0], logs
    assert "will restart worker group" in hosts.output(procs[0]), hosts.output(procs[0])[-3000:]
    rounds = sum(hosts.output(p).count("accel-course: 4 processes on CPU") for p in procs)
    assert rounds == 2, logs                                # the job started twice: before and after the link loss
    assert "resumed from" in hosts.output(procs[0]), logs   # not from the start
    m = json.loads((tmp_path/"out"/"metrics.json").read_text())
    assert same_metrics(m, uninterrupted(hosts, tmp_path))
