"""Group the torch.profiler op tables of ``bench_speed.py --profile`` into a where-the-time-goes
table (markdown), per sampler: optimiser, dense gradient zeroing, towers, loss, the rest.

Run: python bench/profile_table.py before after   (reads bench/results/profile_<tag>_*.json)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS = {  # first match wins; op names as torch.profiler reports them
    "Adam": ("adam", "sqrt", "addcdiv_", "lerp_", "_foreach"),
    "zeroing dense grads": ("fill_", "zero_"),
    "tower matmuls (linear fwd/bwd)": ("addmm", "aten::mm", "aten::bmm"),
    "row ops (normalise, dot, elementwise div/mul)": (
        "unitrows", "rowdot", "vecdot", "vector_norm", "addcmul", "aten::div", "aten::mul",
        "aten::neg"),
    "embedding backward": ("embedding_dense_backward", "_embedding_bag_dense_backward",
                           "sparse_backward", "aten::sort", "index_add", "scatter_add",
                           "accumulategrad", "sparse_coo"),
    "gathers (index, index_select)": ("aten::index", "index_select", "gather"),
}


def group_of(op: str) -> str:
    for name, keys in GROUPS.items():
        if any(k in op.lower() for k in keys):
            return name
    return "other (top-25 ops)"


def table(tag: str) -> str:
    files = sorted(RESULTS.glob(f"profile_{tag}_*.json"))
    rows = []
    for f in files:
        d = json.loads(f.read_text())
        total = d["profiler_self_ms_total"]
        share: dict[str, float] = {}
        for op in d["ops_by_self_time"]:
            g = group_of(op["op"])
            share[g] = share.get(g, 0.0) + op["self_ms"]
        listed = sum(share.values())
        share["rest (beyond the top 25 ops)"] = total - listed
        pct = {k: 100 * v / total for k, v in share.items()}
        rows.append((d["sampler"], total / d["steps"], pct))
    cols = [*GROUPS, "other (top-25 ops)", "rest (beyond the top 25 ops)"]
    out = [f"Profile `{tag}` (torch.profiler self CPU time, % of the step)", "",
           "| sampler | ms/step | " + " | ".join(cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for name, ms, share in rows:
        out.append(f"| {name} | {ms:.1f} | " + " | ".join(f"{share.get(c, 0):.0f}" for c in cols)
                   + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tags", nargs="*", default=["before", "after"],
                    help="profile tags (bench/results/profile_<tag>_*.json)")
    print("\n".join(table(t) for t in ap.parse_args().tags))
