"""Sentiment at scale (issue 21): big-model loading within a budget, the training-memory arithmetic, FSDP on CPU,
scoring split across processes, `main_process_first` for the token cache, and `find_executable_batch_size` on a real
allocation failure."""
import json, textwrap
import numpy as np, pytest, torch
from accel_course.sentiment_model import load_classifier, save_classifier, LABELS3
from accel_course.sentiment_scale import (load_dispatched, block_sizes, empty_classifier, score_texts, input_device,
                                          count_params, training_memory, fsdp_on_cpu, fitting_batch_under_cap,
                                          finetune_batch_under_cap)
from _real import torchrun

TEXTS = ["great phone", "battery died after a week", "it is fine", "would not buy again", "love it"]

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    model, tok = load_classifier(labels=LABELS3, num_layers=1)
    return save_classifier(model, tok, tmp_path_factory.mktemp("m")/"model", LABELS3, {"max_length": 32})

def test_dispatched_model_scores_like_the_in_memory_one(folder, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    ref = score_texts(AutoModelForSequenceClassification.from_pretrained(folder).eval(), tok, TEXTS, batch_size=2)
    _, largest = block_sizes(empty_classifier(folder))
    m = load_dispatched(folder, f"{int(largest / 1e6) + 2}MB", tmp_path/"off")
    assert "disk" in set(m.hf_device_map.values())                         # some (here all) weights offloaded
    assert input_device(m).type == "cpu" and any(p.device.type == "meta" for p in m.parameters())
    np.testing.assert_allclose(score_texts(m, tok, TEXTS, batch_size=2), ref, atol=1e-6)

def test_a_budget_below_the_largest_block_is_one_clear_error(folder, tmp_path):
    with pytest.raises(ValueError, match=r"max_memory='5MB' is below the largest block of .* give at least \d+MB"):
        load_dispatched(folder, "5MB", tmp_path/"off")
    assert not (tmp_path/"off").exists()

def test_memory_arithmetic():
    from transformers import BertConfig, AutoModel
    small = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, vocab_size=500)
    assert count_params(small) == sum(p.numel() for p in AutoModel.from_config(small).parameters())
    assert 105e6 < count_params(BertConfig()) < 115e6                       # bert-base, counted on the meta device
    t = training_memory(1_000_000_000, world=8, per_node=4)
    assert t["DDP"] == pytest.approx(16.0) and t["ZeRO-3 / FULL_SHARD"] == pytest.approx(2.0)
    assert t["ZeRO-1"] == pytest.approx(4 + 12 / 8) and t["ZeRO-2 / SHARD_GRAD_OP"] == pytest.approx(2 + 14 / 8)
    assert t["HYBRID_SHARD (4 per node)"] == pytest.approx(4.0) and t["FULL_SHARD + CPU offload"] == pytest.approx(0.5)

def test_fsdp_on_cpu_accelerate_replicates_fully_shard_halves(folder, tmp_path):
    r = fsdp_on_cpu(folder, tmp_path)
    whole = r[0]["accelerate_params"]
    assert [x["accelerate"] for x in r] == ["DistributedType.MULTI_CPU"] * 2 and r[1]["accelerate_params"] == whole
    assert r[0]["fully_shard_params"] + r[1]["fully_shard_params"] == whole
    assert max(x["fully_shard_params"] for x in r) < 0.51 * whole and all(x["backward"] for x in r)

def test_split_scoring_and_main_process_first_on_two_processes(folder, tmp_path):
    script = tmp_path/"split.py"
    script.write_text(textwrap.dedent(f"""
        import json, torch
        from accelerate import PartialState
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from accel_course.sentiment_scale import score_split, tokenize_once
        st = PartialState(cpu=True)   # under torchrun on CPU: without cpu=True a PartialState sees one process
        m = AutoModelForSequenceClassification.from_pretrained({str(folder)!r}).eval()
        tok = AutoTokenizer.from_pretrained({str(folder)!r})
        texts = [f"review number {{i}} is {{'good' if i % 2 else 'bad'}}" for i in range(11)]   # 11: uneven
        wrote = {{}}
        for k in ("without", "with"):
            st.wait_for_everyone()    # both ranks reach the cache together, as after a launcher start
            wrote[k] = tokenize_once(tok, texts, {str(tmp_path)!r} + f"/cache-{{k}}", first=(k == "with"))
        P = score_split(m, tok, texts, batch_size=4)
        json.dump(dict(p=P.tolist(), wrote=wrote), open({str(tmp_path)!r} + f"/r{{st.process_index}}.json", "w"))
        st.wait_for_everyone()
        st.destroy_process_group()   # a clean exit: gloo's threads left running can SIGABRT a rank at exit
    """))
    p = torchrun(script, env={"ACCELERATE_USE_CPU": "yes", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    r = [json.loads((tmp_path/f"r{k}.json").read_text()) for k in (0, 1)]
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    texts = [f"review number {i} is {'good' if i % 2 else 'bad'}" for i in range(11)]
    ref = score_texts(AutoModelForSequenceClassification.from_pretrained(folder).eval(), tok, texts, batch_size=4)
    for x in r: np.testing.assert_allclose(np.array(x["p"]), ref, atol=1e-6)
    assert [x["wrote"]["with"] for x in r] == [True, False]           # rank 0 tokenised, rank 1 read its cache
    # without it each rank decides alone: usually both tokenise, but which ones do is a matter of timing; the cache
    # is whole either way (the folder is swapped in atomically)
    assert sum(x["wrote"]["without"] for x in r) >= 1
    assert len(list((tmp_path/"cache-without").glob("tokens-*"))) == 1

def test_batch_size_halves_on_a_real_cpu_allocation_failure(folder):
    r = fitting_batch_under_cap(folder, cap_mb=150, n=256, start=256)
    assert r["n"] == 256 and r["tried"][0] == 256 and len(r["tried"]) >= 2
    assert all(b == a // 2 for a, b in zip(r["tried"], r["tried"][1:]))

def test_a_batch_that_never_fits_is_one_clear_error():
    # a recognised allocator error raised on every forward (how a too-large model fails; a real cap is not
    # deterministic here: freed heap memory is reused below the cap)
    from accel_course.sentiment_scale import score_fitting_batch
    from transformers import BertConfig
    class NoMemory(torch.nn.Module):
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.zeros(1)); self.config = BertConfig()
        def forward(self, **b): raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 12 GB")
    tok = __import__("transformers").AutoTokenizer.from_pretrained(
        __import__("accel_course.sentiment_model", fromlist=["x"]).default_checkpoint_dir(), trust_remote_code=False)
    with pytest.raises(ValueError, match=r"start_batch_size=8: not even a batch of 1 fits in memory \(tried \[8, 4, 2, 1\]\)"):
        score_fitting_batch(NoMemory(), tok, TEXTS, start_batch_size=8)

def test_finetune_halves_its_batch_and_keeps_the_effective_batch(folder):
    """A real allocation failure under an address-space cap: the fine-tune retries with half the batch and twice the
    accumulation until one fits; a cap below the optimizer state itself ends in one line naming what to change."""
    r = finetune_batch_under_cap(folder, cap_mb=600, n=64, start=64, num_layers=1, max_length=256)
    assert r["tried"][0] == 64 and len(r["tried"]) >= 2 and r["tried"] == [64 >> k for k in range(len(r["tried"]))]
    assert r["batch_size"] == r["tried"][-1] and r["batch_size"] * r["grad_accum_steps"] == 64
    assert np.isfinite(r["train_loss"])
    with pytest.raises(RuntimeError, match="not even a batch of 1 fits"): finetune_batch_under_cap(folder, cap_mb=60, num_layers=1)
