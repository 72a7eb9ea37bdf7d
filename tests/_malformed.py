"""Mutation helpers shared by the malformed-input suites (tests/test_loaders_*.py).

`Table` splits a real sample into BOM, line ending, header and cells; the functions below return mutations
`Table -> bytes`. Samples are read at test time from ../shared/data; no rows are kept in the repository."""

BOM, R = b"\xef\xbb\xbf", 10          # R: the data row we damage (line R + 2 of the file)
LINE = rf"line {R + 2}\b"


class Table:
    "A sample split into BOM, line ending, header and cells (none of the samples quotes its fields)."
    def __init__(self, raw: bytes):
        self.bom = raw.startswith(BOM); body = raw[3:] if self.bom else raw
        self.eol = "\r\n" if b"\r\n" in body[:10_000] else "\n"
        lines = body.decode("latin-1").split(self.eol)
        if lines[-1] == "": lines = lines[:-1]
        self.header, self.rows = lines[0].split(","), [l.split(",") for l in lines[1:]]
    def col(self, name): return self.header.index(name)
    def set(self, name, value, row=R): self.rows[row][self.col(name)] = value; return self
    def bytes(self, bom=None, eol=None, sep=",", final=True, header=True) -> bytes:
        eol = self.eol if eol is None else eol
        lines = ([self.header] if header else []) + self.rows
        text = eol.join(sep.join(r) for r in lines) + (eol if final else "")
        return (BOM if (self.bom if bom is None else bom) else b"") + text.encode("latin-1")

def swap(a, b):
    def f(t):
        i, j = t.col(a), t.col(b)
        for r in t.rows: r[i], r[j] = r[j], r[i]
        return t.bytes()
    return f

def reorder(t):
    order = list(range(len(t.header)))[::-1]
    t.header = [t.header[i] for i in order]; t.rows = [[r[i] for i in order] for r in t.rows]
    return t.bytes()

def extra(t):
    t.header.append("my_note"); [r.append("x") for r in t.rows]; return t.bytes()

def drop(name):
    def f(t):
        i = t.col(name); t.header.pop(i); [r.pop(i) for r in t.rows]; return t.bytes()
    return f

def cut(k):      # the file cut k bytes before its end (inside the last line)
    return lambda t: t.bytes()[:-k]

def cell(name, value, row=R): return lambda t: t.set(name, value, row).bytes()

ERR_TRUNC = r"looks truncated"

# the cases every CSV loader must handle the same way: (case, mutation, expected: "ok" = the same data as the
# untouched file, or a regex the DataError must match)
GENERIC_CSV = [
    ("empty", lambda t: b"", r"file is empty"),
    ("header_only", lambda t: t.bytes()[:t.bytes().index(t.eol.encode()) + len(t.eol)], r"no data rows"),
    ("semicolons", lambda t: t.bytes(sep=";"), r"missing required column"),
    ("tabs", lambda t: t.bytes(sep="\t"), r"missing required column"),
    ("cut_mid_file", lambda t: t.bytes()[:len(t.bytes()) // 2], ERR_TRUNC),
    ("no_final_break", lambda t: t.bytes(final=False), "ok"),
    ("crlf", lambda t: t.bytes(eol="\r\n"), "ok"),
    ("lf", lambda t: t.bytes(eol="\n"), "ok"),
    ("bom", lambda t: t.bytes(bom=True), "ok"),
    ("no_bom", lambda t: t.bytes(bom=False), "ok"),
    ("reordered_columns", reorder, "ok"),
    ("extra_column", extra, "ok"),
]
