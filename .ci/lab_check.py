"""Open a chapter in a real JupyterLab, as a learner does, and check what the first screen shows.

Starts `jupyter lab` (installed by the README's command) on a free localhost port over a *copy* of `nbs/` (JupyterLab
may save what it opens), loads `lab/tree/01_training.ipynb` in headless Chromium, saves a screenshot to
`_site/shots/jupyterlab_01_training.png`, and fails unless the rendered notebook starts with the chapter's title as
a heading -- not a YAML block (`title: ...`), as the old front matter rendered.

    python .ci/lab_check.py [CHAPTER]        # default 01_training
"""
from __future__ import annotations
import json, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

def free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def chromium(*args, timeout=180) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe: sys.exit("lab check: chromium is not installed (apt-get install chromium)")
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={tempfile.mkdtemp()}", *args], capture_output=True, text=True,
                       timeout=timeout)
    return r.stdout

def main(chapter: str = "01_training"):
    nb = ROOT/"nbs"/f"{chapter}.ipynb"
    first = json.loads(nb.read_text())["cells"][0]
    title = re.match(r"#\s+(.+)", "".join(first["source"])).group(1).strip()
    plain = re.sub(r"[`*_]", "", title)
    work = Path(tempfile.mkdtemp(prefix="accel_course_lab_"))
    shutil.copytree(ROOT/"nbs", work/"nbs")
    port = free_port()
    lab = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.token=",
                            "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={work/'nbs'}",
                            "--ServerApp.ip=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/lab/tree/{nb.name}"
        for _ in range(120):
            try: urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=2); break
            except Exception: time.sleep(1)
        else: sys.exit("lab check: JupyterLab did not answer within 120 s")
        shots = ROOT/"_site"/"shots"; shots.mkdir(parents=True, exist_ok=True)
        png = shots/f"jupyterlab_{chapter}.png"
        chromium("--window-size=1280,1000", "--virtual-time-budget=40000", f"--screenshot={png}", url)
        dom = chromium("--virtual-time-budget=40000", "--dump-dom", url)
    finally:
        lab.terminate()
        try: lab.wait(20)
        except subprocess.TimeoutExpired: lab.kill()
        shutil.rmtree(work, ignore_errors=True)
    h1 = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h1[^>]*>(.*?)</h1>", dom, flags=re.S)]
    h1 = [re.sub(r"\s+", " ", h).replace("¶", "").strip() for h in h1]
    size = png.stat().st_size if png.exists() else 0
    print(f"JupyterLab {url}: screenshot {png.relative_to(ROOT)} ({size} bytes); h1 headings: {h1[:3]}")
    if size < 20000: sys.exit("lab check failed: screenshot missing or blank")
    if not any(plain in h for h in h1): sys.exit(f"lab check failed: no heading {plain!r} in the opened notebook")
    if re.search(r">\s*title:\s", dom): sys.exit("lab check failed: the notebook shows a YAML 'title:' line")
    print(f"lab check: {chapter} opens in JupyterLab with its title {plain!r} as the first heading")

if __name__ == "__main__": main(*sys.argv[1:])
