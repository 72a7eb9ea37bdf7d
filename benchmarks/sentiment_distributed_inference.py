"""Score N synthetic reviews with the saved sentiment model in 1 and in 2 processes (`split_between_processes` +
`gather_object`), side by side in one run: reviews/s for each, and the largest probability difference to 1 process.

    python benchmarks/sentiment_distributed_inference.py --n 1000000 --processes 1 2 [--model runs/sentiment/model]

Without --model a 2-layer MiniLM classifier is built from the offline checkpoint (scores are then meaningless, the
speed is not). Each process uses one thread, so the comparison is cores, not threads."""
import argparse, json, os, subprocess, sys, tempfile, time, textwrap
from pathlib import Path

JOB = textwrap.dedent("""
    import json, sys, time, torch, numpy as np
    from accelerate import PartialState
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from accel_course.sentiment import make_reviews
    from accel_course.sentiment_scale import score_split
    folder, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    st = PartialState(cpu=True); torch.set_num_threads(1)
    m = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=False).eval()
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    texts = make_reviews(n, seed=0).text.tolist()
    st.wait_for_everyone(); t0 = time.perf_counter()
    P = score_split(m, tok, texts, batch_size=128)
    dt = time.perf_counter() - t0
    if st.is_main_process: np.save(out + ".npy", P); json.dump(dict(s=dt, n=len(P)), open(out + ".json", "w"))
""")

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\\n\\n")[0])
    ap.add_argument("--n", type=int, default=20000); ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", default=None)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dist_inf_"))
    folder = a.model
    if folder is None:
        from accel_course.sentiment_model import load_classifier, save_classifier, LABELS3
        m, tok = load_classifier(labels=LABELS3, num_layers=2); folder = save_classifier(m, tok, work/"model", LABELS3)
    (work/"job.py").write_text(JOB)
    import numpy as np
    from accel_course.launch import free_port
    res = {}
    for k in a.processes:
        out = work/f"p{k}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(k), "--master_port", str(free_port()),
               str(work/"job.py"), str(folder), str(a.n), str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1",
                                                                       "ACCELERATE_USE_CPU": "yes"})
        if r.returncode: sys.exit(f"{k} processes failed: {r.stderr[-2000:]}")
        res[k] = json.loads(Path(f"{out}.json").read_text()) | {"P": np.load(f"{out}.npy")}
    base = res[a.processes[0]]
    for k, r in res.items():
        print(f"{k} process(es): {r['n'] / r['s']:,.0f} reviews/s ({r['s']:.1f} s for {r['n']:,}); "
              f"max |P - P_{a.processes[0]}| = {np.abs(r['P'] - base['P']).max():.1e}")

if __name__ == "__main__": main()
