"""The multi-node checks of `launch` that need no second host: the loopback trap decided on a simulated host name,
the bounded timeout, a node rank out of range -- each before anything forks."""
import os, socket
from unittest import mock
import pytest
import accelerate
from accel_course.launch import (launch, multinode_env, route_interface, dist_timeout, LaunchError, DIST_TIMEOUT_S,
                                 IFNAME_VARS, toy_job)

@pytest.fixture
def clean_env(monkeypatch):
    for v in (*IFNAME_VARS, "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "ACCEL_COURSE_DIST_TIMEOUT"):
        monkeypatch.delenv(v, raising=False)
    return monkeypatch

def test_one_machine_needs_nothing(clean_env):
    assert multinode_env(4, 4, "10.0.0.1") == {}                 # every process on this host
    assert multinode_env(4, 2, "127.0.0.1") == {}                # two "nodes" on this host's loopback
    clean_env.setenv("WORLD_SIZE", "2")
    clean_env.setenv("LOCAL_WORLD_SIZE", "2")
    assert multinode_env() == {}                                 # read from torchrun's environment

def test_loopback_hostname_gets_the_interface_that_reaches_the_main_node(clean_env):
    with mock.patch("socket.gethostbyname", return_value="127.0.1.1"), \
         mock.patch("accel_course.launch.route_interface", return_value=("eth7", "10.1.2.3")):
        assert multinode_env(4, 2, "10.1.2.1") == {"GLOO_SOCKET_IFNAME": "eth7"}
        for k, v in dict(WORLD_SIZE="4", LOCAL_WORLD_SIZE="2", MASTER_ADDR="10.1.2.1").items(): clean_env.setenv(k, v)
        assert multinode_env() == {"GLOO_SOCKET_IFNAME": "eth7"}
        for v in IFNAME_VARS:                                    # the user's own choice is left alone
            with mock.patch.dict(os.environ, {v: "ib0"}): assert multinode_env() == {}

def test_routable_hostname_needs_nothing(clean_env):
    with mock.patch("socket.gethostbyname", return_value="10.1.2.3"):
        assert multinode_env(4, 2, "10.1.2.1") == {}

@pytest.mark.parametrize("route,match", [(OSError(101, "Network is unreachable"), "not reachable from here"),
                                         (("", "10.1.2.3"), "set GLOO_SOCKET_IFNAME")])
def test_no_usable_interface_is_one_line_naming_the_fix(clean_env, route, match):
    side = dict(side_effect=route) if isinstance(route, Exception) else dict(return_value=(None, route[1]))
    with mock.patch("socket.gethostbyname", return_value="127.0.0.1"), \
         mock.patch("accel_course.launch.route_interface", **side):
        with pytest.raises(LaunchError, match=match) as e: multinode_env(4, 2, "10.1.2.1")
    msg = str(e.value)
    assert "\n" not in msg and "resolves to 127.0.0.1" in msg
    assert "GLOO_SOCKET_IFNAME" in msg and "NCCL_SOCKET_IFNAME" in msg

def test_route_interface_on_loopback():
    assert route_interface("127.0.0.1") == ("lo", "127.0.0.1")

def test_dist_timeout(clean_env):
    assert dist_timeout().total_seconds() == DIST_TIMEOUT_S == 300
    clean_env.setenv("ACCEL_COURSE_DIST_TIMEOUT", "12.5")
    assert dist_timeout().total_seconds() == 12.5
    for bad in ("0", "-3", "soon"):
        clean_env.setenv("ACCEL_COURSE_DIST_TIMEOUT", bad)
        with pytest.raises(LaunchError, match="ACCEL_COURSE_DIST_TIMEOUT"): dist_timeout()

@pytest.mark.parametrize("rank", [-1, 2, 5])
def test_node_rank_out_of_range_before_anything_forks(clean_env, rank):
    clean_env.setattr(accelerate, "notebook_launcher", mock.Mock(side_effect=AssertionError("must not launch")))
    with pytest.raises(LaunchError, match=f"node_rank={rank} is out of range for num_nodes=2"):
        launch(toy_job, num_processes=2, num_nodes=2, node_rank=rank, use_cpu=True, verbose=False)

def test_launch_passes_the_bounded_rendezvous_timeout_and_the_interface(clean_env):
    seen = {}
    def fake(function, args=(), **kw): seen.update(kw, ifname=os.environ.get("GLOO_SOCKET_IFNAME"))
    clean_env.setattr(accelerate, "notebook_launcher", fake)
    clean_env.setenv("ACCEL_COURSE_DIST_TIMEOUT", "45")
    with mock.patch("socket.gethostbyname", return_value="127.0.1.1"), \
         mock.patch("accel_course.launch.route_interface", return_value=("eth7", "10.1.2.3")):
        launch(toy_job, num_processes=2, num_nodes=2, node_rank=1, master_addr="10.1.2.1", use_cpu=True, verbose=False)
    assert seen["rdzv_conf"] == {"timeout": 45} and seen["ifname"] == "eth7" and seen["node_rank"] == 1
    assert "GLOO_SOCKET_IFNAME" not in os.environ               # set for the launch only
