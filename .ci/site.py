"""Build and check the site offline: nbdev's notebook processing, then smalldocs over the same _quarto.yml.

Quarto cannot be installed offline (its PyPI sdist downloads the binary at build time), so `nbdev-docs` cannot run
here. This does what `nbdev-docs` does before calling Quarto -- refresh nbs/nbdev.yml, build the module index and
process the notebooks into _proc/ -- then renders _proc with the pure-Python renderer smalldocs, names the pages as
Quarto does (nbdev's `output-file`, e.g. `training.html`), and fails on a render error, a missing page, or any link
into the site (absolute under `site-url`, or relative) whose page or anchor the build did not produce.  Maintainers with internet get the real Quarto site from
.github/workflows/deploy.yaml.
"""
import os, re, html, shutil, subprocess, sys, tempfile
import yaml
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
    # render a private copy: several builds of the same tree may run at once (and _proc/_docs is Quarto's)
    build = Path(tempfile.mkdtemp(prefix="accel_course_site_"))/"proc"
    shutil.copytree(cache, build, ignore=shutil.ignore_patterns("_docs"))
    cache = build
    r = subprocess.run(["smalldocs", "render", str(cache)])
    if r.returncode: sys.exit(f"site check failed: smalldocs render exited {r.returncode}")
    # `smalldocs check` also lists Quarto-only keys it ignores (exit 1 for those too): fail on real problems only
    r = subprocess.run(["smalldocs", "check", str(cache)], capture_output=True, text=True)
    print(r.stdout + r.stderr)
    problems = [l for l in (r.stdout + r.stderr).splitlines()
                if any(w in l.lower() for w in ("broken link", "error", "not found", "missing", "traceback"))]
    if problems: sys.exit("site check failed:\n  " + "\n  ".join(problems))
    site = cache/"_docs"
    renamed = apply_output_files(cache, site)
    print(f"pages named as Quarto names them (nbdev front matter output-file): {renamed}")
    pages = sorted(p.name for p in site.glob("*.html"))
    print(f"site: {len(pages)} pages in {site}: {', '.join(pages)}")
    needed = ["index.html"] + [f"{nbdev_name(p)}" for p in sorted(Path(cfg.nbs_path).glob("[0-9]*.ipynb"))]
    missing = [p for p in needed if p not in pages]
    if missing: sys.exit(f"site check failed: missing pages {missing}")
    leaked = [p for p in pages if p.startswith(("nbdev", "sidebar"))]
    if leaked: sys.exit(f"site check failed: config files rendered as pages: {leaked}")
    site_url = yaml.safe_load((Path(cfg.nbs_path)/"_quarto.yml").read_text())["website"]["site-url"].rstrip("/") + "/"
    broken, n = check_links(site, site_url)
    print(f"links into the site checked: {n} ({site_url}... and relative .html), broken: {len(broken)}")
    if broken: sys.exit("site check failed: links to pages or anchors the build did not produce:\n  " +
                        "\n  ".join(f"{k} (x{v})" for k, v in sorted(broken.items())[:40]))
    out = Path(cfg.config_path)/"_site"
    shutil.rmtree(out, ignore_errors=True); shutil.copytree(site, out)
    print(f"site written to {out}")

def nbdev_name(nb: Path) -> str:
    "The page name Quarto gives a notebook: nbdev's output-file (numeric prefix dropped), e.g. 01_training -> training.html"
    from nbdev.config import nbpath2html
    return nbpath2html(nb).name

def apply_output_files(cache: Path, site: Path) -> dict:
    "smalldocs ignores `output-file`; rename pages (and the links to them) as Quarto does, so links can be checked."
    from fastcore.nbio import read_nb, cell_frontmatter
    ren = {}
    for nb in sorted(cache.glob("*.ipynb")):
        raw = next((c for c in read_nb(nb).cells if c.cell_type == "raw"), None)
        out = (cell_frontmatter(raw.source) if raw else {}).get("output-file")
        if out and out != f"{nb.stem}.html" and (site/f"{nb.stem}.html").exists(): ren[f"{nb.stem}.html"] = out
    for old, new in ren.items(): (site/old).rename(site/new)
    rx = re.compile(r'(["/])(' + "|".join(map(re.escape, ren)) + r')([#"?])') if ren else None
    for f in list(site.glob("*.html")) + [site/"search.json", site/"sitemap.xml"]:
        if rx and f.exists(): f.write_text(rx.sub(lambda m: m.group(1) + ren[m.group(2)] + m.group(3), f.read_text()))
    return ren

def check_links(site: Path, site_url: str):
    "Every link into the site (absolute under site-url, or relative .html) must reach a built page and anchor."
    ids = {p.name: set(re.findall(r'\sid="([^"]+)"', p.read_text())) for p in site.glob("*.html")}
    broken, n = {}, 0
    for p in site.glob("*.html"):
        for href in re.findall(r'href="([^"]+)"', p.read_text()):
            href = html.unescape(href)
            if href.startswith(site_url): target = href[len(site_url):]
            elif "://" in href or href.startswith(("#", "mailto:")) or ".html" not in href: continue
            else: target = href
            page, _, anchor = target.partition("#")
            page = page.split("?")[0].removeprefix("./") or "index.html"
            if not page.endswith(".html"): continue
            n += 1
            if page not in ids or (anchor and anchor not in ids[page]):
                key = f"{href} (in {p.name})"; broken[key] = broken.get(key, 0) + 1
    return broken, n

if __name__ == "__main__": main()
