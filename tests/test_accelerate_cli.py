"""Accelerate's own command line as 03_cli runs it: `accelerate env`, `config default`, `launch` with the course's
multi-CPU config, `debug_launcher`, and the offline memory arithmetic of `accel-course estimate-memory`."""
import re
import json, os, subprocess, sys, textwrap
from pathlib import Path
import pytest
import torch
from accel_course.cli import (run_accelerate, course_folder, model_config, count_parameters, count_on_meta,
                              estimate_memory, memory_table, BYTES_PER_PARAM, STRATEGIES, main)
from accel_course.core import DataError

REPO = Path(__file__).resolve().parents[1]
ENV = {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

def test_accelerate_env_reports_this_accelerate_with_paths_shortened():
    import accelerate
    rc, out, secs = run_accelerate("env")
    assert rc == 0, out
    assert f"`Accelerate` version: {accelerate.__version__}" in out and f"PyTorch version: {torch.__version__}" in out
    assert str(Path.home()) + os.sep not in out and sys.prefix not in out   # shortened to ~ / <python>

def test_config_default_writes_where_told_and_never_replaces(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file
    cfg, hf_home = tmp_path/"cfgs"/"default_config.yaml", tmp_path/"hf_home"
    rc, out, _ = run_accelerate("config", "default", "--config_file", cfg, env={"HF_HOME": str(hf_home)})
    assert rc == 0 and cfg.is_file(), out
    c = load_config_from_file(str(cfg))
    assert c.num_processes == (torch.cuda.device_count() or 1) and c.use_cpu == (not torch.cuda.is_available())
    assert not hf_home.exists()                       # nothing went to the default location
    cfg.write_text(cfg.read_text().replace('"debug": false', '"debug": true'))
    before = cfg.read_text()
    rc, out, _ = run_accelerate("config", "default", "--config_file", cfg)
    assert rc == 0 and "will not override" in out and cfg.read_text() == before

def check_world(out_dir, expected=2):
    "Run by debug_launcher in each process: assert the world size, gather, write what this rank saw."
    from accelerate import Accelerator
    torch.set_num_threads(1)
    acc = Accelerator()
    assert acc.num_processes == expected, f"expected a world of {expected}, got {acc.num_processes}"
    got = acc.gather(torch.tensor([acc.process_index + 1.0]))
    (Path(out_dir)/f"rank{acc.process_index}.json").write_text(
        json.dumps(dict(world=acc.num_processes, type=str(acc.distributed_type), gathered=got.tolist())))
    acc.wait_for_everyone()   # no destroy_process_group: debug_launcher's rendezvous file would vanish under it

def test_debug_launcher_runs_two_connected_cpu_processes_and_reports_a_failing_rank(tmp_path, monkeypatch):
    from accelerate import debug_launcher, Accelerator
    from accel_course.training import reset_accelerate_state
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    reset_accelerate_state(keep_process_group=False)   # a forked child inherits this process's Accelerate state
    debug_launcher(check_world, args=(str(tmp_path),), num_processes=2)
    seen = [json.loads((tmp_path/f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(s["world"] == 2 and s["type"].endswith("MULTI_CPU") and s["gathered"] == [1.0, 2.0] for s in seen)
    with pytest.raises(Exception, match="expected a world of 3, got 2"):
        debug_launcher(check_world, args=(str(tmp_path/"x"), 3), num_processes=2)
    Accelerator()   # an Accelerator made before the launch is inherited: each child sees a world of 1
    with pytest.raises(Exception, match="expected a world of 2, got 1"):
        debug_launcher(check_world, args=(str(tmp_path/"y"),), num_processes=2)
    reset_accelerate_state(keep_process_group=False)

# a launched script: prints the world this process sees, registers a project that records it in the run folder,
# and runs the course CLI
LAUNCHED = textwrap.dedent('''
    import os, sys, json
    from pathlib import Path
    from accelerate import PartialState
    state = PartialState(cpu=True)
    print(f"rank {state.process_index}: world of {state.num_processes}", flush=True)
    if len(sys.argv) > 1:
        from accel_course.core import register_project
        from accel_course.cli import main
        @register_project("ranks")
        def run(ctx):
            (Path(ctx.out)/f"rank{state.process_index}.json").write_text(json.dumps(dict(world=state.num_processes)))
            return dict(dataset="ranks", source="sample", n_train=2, n_test=2, models={"m": {"rmse": 1.0}}, best="m")
        sys.exit(main(sys.argv[1:]))
    state.destroy_process_group()
''')

def test_accelerate_launch_cpu_flag_starts_one_process_multi_cpu_config_two(tmp_path):
    script = tmp_path/"launched.py"
    script.write_text(LAUNCHED)
    rc, out, _ = run_accelerate("launch", "--cpu", "--num_processes", "2", "--num_cpu_threads_per_process", "1",
                                script, cwd=tmp_path, env=ENV)
    assert rc == 0 and [l for l in out.splitlines() if l.startswith("rank ")] == ["rank 0: world of 1"], out
    cfg = course_folder("accelerate_configs")/"multi_cpu.yaml"
    rc, out, _ = run_accelerate("launch", "--config_file", cfg, script, "run", "ranks", "--out", tmp_path/"out",
                                cwd=tmp_path, env=ENV, timeout=300)
    assert rc == 0, out[-3000:]
    # two ranks print at the same moment: their lines may run together, so find each rank's words anywhere
    assert sorted(re.findall(r"rank (\d): world of 2", out)) == ["0", "1"], out
    assert out.count("wrote ") == 1 and "accel-course: 2 processes on CPU" in out, out   # rank 0 alone prints/writes
    assert [json.loads((tmp_path/"out"/f"rank{r}.json").read_text())["world"] for r in (0, 1)] == [2, 2]
    assert json.loads((tmp_path/"out"/"metrics.json").read_text())["project"] == "ranks"

def test_parameter_formulas_match_models_built_on_the_meta_device(tmp_path):
    import transformers
    small = dict(vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4)
    configs = {"bert-base-uncased": "bert-base-uncased", "minilm": "minilm",
               "llama gqa, biases, untied": transformers.LlamaConfig(**small, num_key_value_heads=2, attention_bias=True,
                                                                     mlp_bias=True, tie_word_embeddings=False,
                                                                     architectures=["LlamaForCausalLM"]),
               "llama tied": transformers.LlamaConfig(**small, tie_word_embeddings=True, architectures=["LlamaForCausalLM"]),
               "llama backbone": transformers.LlamaConfig(**small, tie_word_embeddings=False),
               "mistral": transformers.MistralConfig(**small, num_key_value_heads=1, tie_word_embeddings=False,
                                                     architectures=["MistralForCausalLM"]),
               "bert small": transformers.BertConfig(**small, max_position_embeddings=64, type_vocab_size=3)}
    for name, c in configs.items():
        n = count_parameters(c)
        assert n["how"] == "arithmetic from the config" and n["total"] == count_on_meta(c), name
    assert count_parameters("bert-base-uncased")["total"] == 109_482_240
    assert count_parameters("llama-2-7b")["total"] == 6_738_415_616        # Llama-2-7b-hf, as published
    # the real MiniLM checkpoint on disk: its safetensors header holds every tensor's shape
    from safetensors import safe_open
    from accel_course.sentiment_model import default_checkpoint_dir
    with safe_open(str(default_checkpoint_dir()/"model.safetensors"), "pt") as f:
        on_disk = sum(torch.Size(f.get_slice(k).get_shape()).numel() for k in f.keys() if "position_ids" not in k)
    assert count_parameters("minilm")["total"] == on_disk
    # a type without a formula is counted on the meta device
    gpt2 = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100, n_positions=16)
    assert count_parameters(gpt2)["how"] == "counted on the meta device" and count_parameters(gpt2)["total"] > 0

@pytest.mark.parametrize("precision", list(BYTES_PER_PARAM))
def test_memory_per_rank_follows_the_zero_arithmetic(precision):
    n, e = 8, estimate_memory("bert-base-uncased", precision, num_processes=8)
    psi, unit, b = e["parameters"], e["largest_block"], BYTES_PER_PARAM[precision]
    w, g, o = b["weights"], b["gradients"], b["optimizer"]
    assert w + g + o == 16 and unit == 24_427_776          # bert-base: embeddings + pooler outweigh one layer
    gpu = {r["strategy"]: r["gpu"] for r in e["rows"]}
    assert list(gpu) == list(STRATEGIES)
    assert gpu["DDP"] == 16 * psi
    assert gpu["ZeRO-1"] == pytest.approx((w + g) * psi + o * psi / n)
    assert gpu["ZeRO-2"] == pytest.approx(w * psi + (g + o) * psi / n)
    assert gpu["ZeRO-3"] == gpu["FSDP full shard"] == pytest.approx(16 * psi / n + w * unit)
    assert gpu["ZeRO-3 + CPU offload"] == w * unit and e["rows"][-1]["cpu"] == pytest.approx(16 * psi / n)
    one = estimate_memory("bert-base-uncased", precision, num_processes=1)
    assert {r["gpu"] for r in one["rows"][:3]} == {16 * psi}
    assert "ZeRO-3 + CPU offload" in memory_table(e)

def test_estimate_memory_refuses_bad_arguments():
    with pytest.raises(ValueError, match="precision 'fp8'"): estimate_memory("minilm", "fp8")
    with pytest.raises(ValueError, match="num_processes"): estimate_memory("minilm", "bf16", 0)

@pytest.mark.parametrize("content,needle", [(None, "no such config file"), ("{not json", "not a JSON model config"),
                                            ('{"hidden_size": 8}', "no 'model_type' key"),
                                            ('{"model_type": "nosuchmodel"}', "'nosuchmodel' is not known")])
def test_estimate_memory_cli_bad_config_is_one_line_exit_2(tmp_path, capsys, content, needle):
    f = tmp_path/"config.json"
    if content is not None: f.write_text(content)
    assert main(["estimate-memory", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and (content is None or str(f) in err), err

def test_estimate_memory_cli_as_a_user_runs_it(tmp_path):
    run = lambda *a: subprocess.run(["accel-course", "estimate-memory", *a], capture_output=True, text=True,
                                    timeout=300, env={**os.environ, **ENV})
    p = run("--help")
    assert p.returncode == 0 and "usage: accel-course estimate-memory" in p.stdout and "--num-processes" in p.stdout
    p = run("minilm", "--precision", "fp32", "bf16", "--num-processes", "2", "--json")
    assert p.returncode == 0, p.stderr
    ests = json.loads(p.stdout)
    assert [e["precision"] for e in ests] == ["fp32", "bf16"] and {e["parameters"] for e in ests} == {22_713_216}
    assert all(e["num_processes"] == 2 for e in ests)
    (tmp_path/"m").mkdir()                  # a model folder: its config.json is read
    (tmp_path/"m"/"config.json").write_text(model_config("bert-base-uncased").to_json_string())
    p = run(str(tmp_path/"m"))
    assert p.returncode == 0 and "109,482,240 parameters" in p.stdout, p.stderr
    for args, needle in [(("minilm", "--precision", "fp8"), "argument --precision: invalid choice: 'fp8'"),
                         (("minilm", "--num-processes", "0"), "expected a positive integer, got 0"),
                         ((str(tmp_path/"missing.json"),), "no such config file")]:
        p = run(*args)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and needle in p.stderr, p.stderr
