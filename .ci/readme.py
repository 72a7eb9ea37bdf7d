"""Generate README.md from nbs/index.ipynb (what `nbdev-readme` does with Quarto, which cannot be installed offline).

    python .ci/readme.py           # write README.md
    python .ci/readme.py --check   # exit 1 if README.md is out of date
Markdown cells are copied, visible code cells become ```python blocks, front matter becomes the title line, and
links to chapter notebooks point into nbs/ so they work on GitHub.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def render() -> str:
    nb = json.loads((ROOT/"nbs"/"index.ipynb").read_text())
    parts = []
    for c in nb["cells"]:
        src = "".join(c["source"]).strip()
        if not src: continue
        if c["cell_type"] == "markdown":
            m = re.match(r"^---\n(.*?)\n---\s*(.*)$", src, re.S)
            if m:
                fm = dict(re.findall(r"^(\w[\w-]*):\s*\"?(.*?)\"?\s*$", m.group(1), re.M))
                parts.append(f"# {fm.get('title', 'accel_course')}\n\n> {fm.get('description', '')}".rstrip())
                src = m.group(2).strip()
                if not src: continue
            parts.append(re.sub(r"\]\((\d\d_[\w]+\.ipynb)\)", r"](nbs/\1)", src))
        elif c["cell_type"] == "code":
            if any(l.strip() in ("#| hide", "#|hide") for l in src.splitlines()): continue
            parts.append("```python\n" + "\n".join(l for l in src.splitlines() if not l.startswith("#|")) + "\n```")
    return "<!-- Generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file. -->\n\n" + "\n\n".join(parts) + "\n"

if __name__ == "__main__":
    txt = render(); readme = ROOT/"README.md"
    if "--check" in sys.argv:
        if not readme.exists() or readme.read_text() != txt:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python .ci/readme.py`")
        print("README.md is in sync with nbs/index.ipynb")
    else:
        readme.write_text(txt); print(f"wrote {readme}")
