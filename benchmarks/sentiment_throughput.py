"""Fine-tuning throughput of all-MiniLM-L6-v2, measured side by side in one run on the same model, batch and data:

  1. `finetune` (shared `fit`) with dynamic padding + length-grouped batches  (the chapter's default)
  2. `finetune` (shared `fit`) padding every review to max_length, random batches
  3. Hugging Face `Trainer`, dynamic padding (DataCollatorWithPadding), its default random sampler
  4. Hugging Face `Trainer`, dynamic padding + train_sampling_strategy="group_by_length"

then samples/s of variant 1 in fp32, bf16 and fp16 (`mixed_precision=`). It runs unchanged on CPU and GPU; on CPU,
fp16 autocast is off (fit warns), so that row is fp32 in disguise.

    python benchmarks/sentiment_throughput.py [--n 384] [--batch-size 32] [--max-length 128] [--reps 2]

Targets: (1) >= 1.3x (2), and (1) >= Trainer; on an H100-class GPU, bf16 >= 2.5x fp32.
Variants alternate within each repetition; the median samples/s over repetitions is reported.
"""
import argparse, copy, os, statistics, tempfile, time, warnings
os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import numpy as np
import torch

from accel_course.sentiment import (LABELS3, TokenizedReviews, finetune, load_classifier, make_reviews, load_path,
                                    padding_share, make_loader)


def run_fit(base, tok, df, a, **kw):
    model = copy.deepcopy(base)
    t0 = time.perf_counter()
    r = finetune(df, None, model=model, tokenizer=tok, lr=5e-5, epochs=1, batch_size=a.batch_size,
                 max_length=a.max_length, seed=a.seed, verbose=False, **kw)
    if torch.cuda.is_available(): torch.cuda.synchronize()
    return len(df) / (time.perf_counter() - t0), r.padding_share


def run_trainer(base, tok, df, a, group_by_length=False):
    from transformers import Trainer, TrainingArguments, DataCollatorWithPadding
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    model = copy.deepcopy(base)
    ds = TokenizedReviews(tok, df.text, df.label, a.max_length)
    with tempfile.TemporaryDirectory() as d:
        kw = dict(output_dir=d, per_device_train_batch_size=a.batch_size, num_train_epochs=1, learning_rate=5e-5,
                  warmup_steps=0, weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type="linear", logging_strategy="no",
                  save_strategy="no", report_to=[], disable_tqdm=True, seed=a.seed, dataloader_num_workers=0,
                  use_cpu=not torch.cuda.is_available())
        if group_by_length: kw["train_sampling_strategy"] = "group_by_length"
        args = TrainingArguments(**kw)
        tr = Trainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorWithPadding(tok))
        t0 = time.perf_counter(); tr.train()
        if torch.cuda.is_available(): torch.cuda.synchronize()
        return len(df) / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="review file (default: the synthetic generator)")
    ap.add_argument("--n", type=int, default=384, help="training reviews per timed run")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-precision", action="store_true")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    df = (load_path(a.data).df if a.data else make_reviews(a.n, seed=a.seed)).sample(frac=1, random_state=a.seed)[:a.n]
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    labels = sorted(df.label.unique()); names = LABELS3 if len(labels) == 3 else ["negative", "positive"]
    base, tok = load_classifier(labels=names)
    ds = TokenizedReviews(tok, df.text, df.label, a.max_length)
    print(f"device: {dev} | {len(df)} reviews ({'synthetic' if not a.data else a.data}), batch {a.batch_size}, "
          f"max_length {a.max_length}, mean length {np.mean(ds.lengths):.1f} tokens, {a.reps} reps", flush=True)
    print(f"padding share: max_length {padding_share(make_loader(ds, a.batch_size, padding='max_length', group_by_length=False)):.1%}, "
          f"dynamic {padding_share(make_loader(ds, a.batch_size, group_by_length=False)):.1%}, "
          f"dynamic+grouped {padding_share(make_loader(ds, a.batch_size)):.1%}", flush=True)
    variants = {
        "fit: dynamic + length-grouped": lambda: run_fit(base, tok, df, a)[0],
        "fit: pad to max_length": lambda: run_fit(base, tok, df, a, padding="max_length", group_by_length=False)[0],
        "HF Trainer: dynamic padding": lambda: run_trainer(base, tok, df, a),
        "HF Trainer: dynamic + group_by_length": lambda: run_trainer(base, tok, df, a, group_by_length=True),
    }
    run_fit(base, tok, df[:a.batch_size * 2], a)          # warm-up (allocator, kernels)
    res = {k: [] for k in variants}
    for rep in range(a.reps):
        order = list(variants) if rep % 2 == 0 else list(variants)[::-1]
        for k in order:
            res[k].append(variants[k]()); print(f"  rep {rep + 1} {k:40s} {res[k][-1]:8.1f} samples/s", flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    ref = med["fit: dynamic + length-grouped"]
    print("\nfine-tuning throughput (median samples/s):")
    for k, v in med.items(): print(f"  {k:40s} {v:8.1f}   (fit dynamic+grouped is {ref / v:.2f}x this)")
    if a.skip_precision: return
    print("\nmixed precision (fit, dynamic + length-grouped):")
    sp = {}
    for mp in ("no", "bf16", "fp16"):
        v = statistics.median(run_fit(base, tok, df, a, mixed_precision=mp)[0] for _ in range(a.reps))
        sp[mp] = v
        note = " (fp16 autocast is off on CPU: this is fp32)" if mp == "fp16" and not torch.cuda.is_available() else ""
        print(f"  {('fp32' if mp == 'no' else mp):5s} {v:8.1f} samples/s  ({v / sp['no']:.2f}x fp32){note}", flush=True)


if __name__ == "__main__":
    main()
