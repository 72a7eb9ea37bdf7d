"""Peak GPU memory per process of the sentiment fine-tune under DDP and under FSDP FULL_SHARD, side by side in one
run (the measurement of Accelerate's examples/by_feature/fsdp_with_peak_mem_tracking.py, on this course's model).

    python benchmarks/fsdp_peak_memory.py [--model runs/sentiment/model] [--steps 20]            # 1 GPU
    accelerate launch --multi_gpu --num_processes 2 benchmarks/fsdp_peak_memory.py               # 2+ GPUs

Each process prints its peak `torch.cuda.max_memory_allocated` for both runs and the last loss. Without a GPU it prints
one SKIP line and exits 3 (FSDP does not shard on CPU under Accelerate: see 27_sentiment_scale)."""
import argparse, sys
import torch

def run(strategy, folder, steps, batch_size):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accel_course.training import make_accelerator, make_mlp  # noqa: F401  (make_accelerator resets the state)
    from accel_course.sentiment_model import load_classifier, LABELS3
    from accel_course.sentiment import make_reviews
    kw = {}
    if strategy == "FSDP FULL_SHARD":
        kw["fsdp_plugin"] = FullyShardedDataParallelPlugin(sharding_strategy="FULL_SHARD", auto_wrap_policy="transformer_based_wrap",
                                                           transformer_cls_names_to_wrap=["BertLayer"])
    acc = make_accelerator("bf16", **kw)
    model, tok = load_classifier(folder, labels=LABELS3 if folder is None else None)
    texts = make_reviews(steps * batch_size * acc.num_processes, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model, opt = acc.prepare(model, opt)
    torch.cuda.reset_peak_memory_stats(); model.train()
    for i in range(steps):
        rows = texts.iloc[(i * acc.num_processes + acc.process_index) * batch_size:][:batch_size]
        b = tok(rows.text.tolist(), padding=True, truncation=True, max_length=128, return_tensors="pt").to(acc.device)
        loss = model(**b, labels=torch.tensor(rows.label.values, device=acc.device)).loss
        acc.backward(loss); opt.step(); opt.zero_grad()
    peak = torch.cuda.max_memory_allocated() / 2**20
    print(f"{strategy:>16} | rank {acc.process_index}/{acc.num_processes} | peak {peak:,.0f} MiB | last loss {loss.item():.4f}",
          flush=True)
    acc.wait_for_everyone()

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a saved classifier folder (default: the offline MiniLM, fresh head)")
    ap.add_argument("--steps", type=int, default=20); ap.add_argument("--batch-size", type=int, default=32)
    a = ap.parse_args()
    if not torch.cuda.is_available(): print("SKIP: no GPU (FSDP shards only on GPUs under Accelerate)"); sys.exit(3)
    for strategy in ("DDP", "FSDP FULL_SHARD"): run(strategy, a.model, a.steps, a.batch_size)

if __name__ == "__main__": main()
