"""The paper's Table 1 as text: per layer the chosen expression's MSE and R² beside DyT's, and the means."""

from __future__ import annotations


def _num(v, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def alignment_table(doc: dict, width: int = 60) -> str:
    """Rows of `layer | GP MSE | GP R2 | DyT alpha | DyT MSE | DyT R2 | expression`, then the means."""
    layers = doc.get("layers", {})
    name_w = max([len("layer"), *(len(n) for n in layers)])
    head = f"{'layer':<{name_w}}  {'GP MSE':>8}  {'GP R2':>7}  {'alpha':>7}  {'DyT MSE':>8}  {'DyT R2':>7}  expression"
    lines = [head, "-" * len(head)]
    for name, e in layers.items():
        if not isinstance(e, dict) or "dyt" not in e:
            continue
        expr = e["expr"] if len(e["expr"]) <= width else e["expr"][: width - 3] + "..."
        d = e["dyt"]
        lines.append(f"{name:<{name_w}}  {_num(e['mse']):>8}  {_num(e['r2']):>7}  {_num(d['alpha'], '.3f'):>7}  "
                     f"{_num(d['mse']):>8}  {_num(d['r2']):>7}  {expr}")
    s = doc.get("gp", {}).get("summary") or {}
    if s:
        lines.append("-" * len(head))
        lines.append(f"{'mean':<{name_w}}  {_num(s['gp']['mean_mse']):>8}  {_num(s['gp']['mean_r2']):>7}  "
                     f"{'':>7}  {_num(s['dyt']['mean_mse']):>8}  {_num(s['dyt']['mean_r2']):>7}")
        lines += ["", f"Table 1 ({s['layers']} layers, validation points)        Mean MSE        Mean R2"]
        rows = [("Dynamic Tanh (least-squares alpha)", f"{s['dyt']['mean_mse']:.4f}", f"{s['dyt']['mean_r2']:.4f}")]
        g = s.get("gp_seeds")
        if g and g["seeds"] > 1:
            rows.append((f"GP, mean +- std over {g['seeds']} seeds", f"{g['mean_mse']:.4f}+-{g['std_mse']:.4f}",
                         f"{g['mean_r2']:.4f}+-{g['std_r2']:.4f}"))
        rows.append(("GP, best seed per layer", f"{s['gp']['mean_mse']:.4f}", f"{s['gp']['mean_r2']:.4f}"))
        lines += [f"  {label:<36}  {mse:>15}  {r2:>13}" for label, mse, r2 in rows]
    return "\n".join(lines)
