"""Build and check the site offline: nbdev's notebook processing, then smalldocs over the same _quarto.yml.

Quarto cannot be installed offline (its PyPI sdist downloads the binary at build time), so `nbdev-docs` cannot run
here. This does what `nbdev-docs` does before calling Quarto -- refresh nbs/nbdev.yml, build the module index and
process the notebooks into _proc/ -- then renders _proc with the pure-Python renderer smalldocs and fails on a render
error or a broken internal link.  Maintainers with internet get the real Quarto site from
.github/workflows/deploy.yaml.
"""
import os, subprocess, sys
from pathlib import Path

def main():
    from nbdev.config import get_config
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs
    import nbdev.doclinks
    cfg = get_config()
    os.chdir(cfg.config_path)
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    cache = proc_nbs(cfg.nbs_path, n_workers=2)
    print(f"processed notebooks into {cache}")
    r = subprocess.run(["smalldocs", "render", str(cache)])
    if r.returncode: sys.exit(f"site check failed: smalldocs render exited {r.returncode}")
    # `smalldocs check` also lists Quarto-only keys it ignores (exit 1 for those too): fail on real problems only
    r = subprocess.run(["smalldocs", "check", str(cache)], capture_output=True, text=True)
    print(r.stdout + r.stderr)
    problems = [l for l in (r.stdout + r.stderr).splitlines()
                if any(w in l.lower() for w in ("broken link", "error", "not found", "missing", "traceback"))]
    if problems: sys.exit("site check failed:\n  " + "\n  ".join(problems))
    site = cache/"_docs"
    pages = sorted(p.name for p in site.glob("*.html"))
    pages = [p for p in pages]
    print(f"site: {len(pages)} pages in {site}: {', '.join(pages)}")
    needed = ["index.html", "00_core.html", "01_training.html", "02_launch.html", "03_cli.html", "10_housing.html",
              "11_maintenance.html", "20_sentiment.html", "21_serve.html", "30_anomaly.html"]
    missing = [p for p in needed if p not in pages]
    if missing: sys.exit(f"site check failed: missing pages {missing}")
    leaked = [p for p in pages if p.startswith(("nbdev", "sidebar"))]
    if leaked: sys.exit(f"site check failed: config files rendered as pages: {leaked}")

if __name__ == "__main__": main()
