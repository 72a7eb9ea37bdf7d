"""Scale pipeline for `benchmarks/scale.py`: tokenising generated reviews into an Arrow-backed `datasets.Dataset`.

`run(n)` tokenises `n` synthetic reviews with the chapter's tokenizer (the offline all-MiniLM-L6-v2, max_length 128)
through `accel_course.sentiment.tokenize_to_arrow` -- what `finetune` does from `ARROW_ROWS` (50,000) reviews on:
`map(batched=True)` in batches of 10,000, int32 token ids, saved to disk and read back memory-mapped -- and then
reads every row once through `ArrowReviews` in length-grouped batches of 32, as the training loader does.

The texts: `make_reviews` costs about a millisecond per review in pure Python (minutes for a million), which would
swamp the tokenisation being measured. So a fixed pool of `POOL` (5,000) generated reviews is drawn with replacement
(seeded) to `n` texts: the tokenizer does the same work per text whether or not a text repeats (fast tokenizers keep
no cache of whole texts). The pool's generation is a fixed cost (reported as `gen_s`, not part of `tok_s`).

    OMP_NUM_THREADS=1 python benchmarks/scale.py --only sentiment --factors 1,4,16,64     # 15,625 ... 1,000,000 reviews
    python benchmarks/scale_sentiment.py 1000000          # one size in this process: seconds and peak RSS
"""
import os, sys, tempfile, time
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np, pandas as pd, torch, datasets, transformers        # the baseline child imports these too
from accel_course.sentiment import (make_reviews, tokenize_to_arrow, ArrowReviews, make_loader, resolve_checkpoint,
                                    quiet_transformers)

NAME = "sentiment"
BASE = 15_625          # reviews at factor 1: 64x = 1,000,000 (issue 12's target size)
FULL = 4_000_000       # amazon_polarity: 3.6 M training + 400 k test reviews
POOL = 5_000           # distinct generated reviews the texts are drawn from


def run(n_rows: int, seed: int = 0) -> dict:
    from transformers import AutoTokenizer
    with quiet_transformers(): tok = AutoTokenizer.from_pretrained(resolve_checkpoint(None))
    t0 = time.perf_counter()
    pool = make_reviews(min(POOL, n_rows), seed=seed)
    gen_s = time.perf_counter() - t0
    pick = np.random.default_rng(seed).integers(len(pool), size=n_rows)
    texts, labels = pool.text.to_numpy(dtype=object)[pick].tolist(), pool.label.to_numpy()[pick]
    with tempfile.TemporaryDirectory() as td:
        t1 = time.perf_counter()
        ds = tokenize_to_arrow(tok, texts, labels, 128, cache_dir=td)
        tok_s = time.perf_counter() - t1
        del texts
        arr = ArrowReviews(ds, 128)
        t2 = time.perf_counter(); n_tok = 0
        for b in make_loader(arr, 32, seed=seed, pad_id=tok.pad_token_id): n_tok += int(b["attention_mask"].sum())
        read_s = time.perf_counter() - t2
    return dict(gen_s=round(gen_s, 1), tok_s=round(tok_s, 1), reviews_per_s=round(n_rows / tok_s), read_s=round(read_s, 1),
                tokens=n_tok, mean_tokens=round(n_tok / n_rows, 1))


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [BASE]:
        t0, c0 = time.perf_counter(), time.process_time()
        r = run(n, 0)
        import resource
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n} reviews: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU, peak RSS {rss:.0f} MB; {r}",
              flush=True)
