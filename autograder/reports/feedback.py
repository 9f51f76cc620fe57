"""Per-student feedback pages (Markdown and a self-contained HTML page) rendered from a GradeResult.

The HTML page loads nothing: its CSS is inline and its plots (confusion matrix, learning curve)
are base64 PNG data URIs. Hidden checks show their name and a sanitised message, never code.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from autograder.reports.exports import check_text, stage_error_text, student_id
from autograder.reports.markdown_text import md_code, md_message, md_text, md_trusted
from autograder.reports.results import GradeResult, StageResult

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;
background:#f6f8fa;margin:0;line-height:1.5}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:0 0 12px}h3{font-size:16px;margin:18px 0 8px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:18px 22px;margin:0 0 18px}
.muted{color:#656d76;font-size:14px}.big{font-size:34px;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:14px}table.compact{width:auto;min-width:60%}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#eaeef2;border-radius:4px;height:10px;width:160px;overflow:hidden;display:inline-block}
.bar>span{display:block;height:100%}.full{background:#1a7f37}.part{background:#bf8700}.none{background:#cf222e}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
ul.fails{padding-left:20px;margin:6px 0}ul.fails li{margin:6px 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eff1f3;padding:1px 5px;
border-radius:4px;font-size:13px}
.msg{white-space:pre-wrap}
.hint{background:#ddf4ff;border-left:4px solid #0969da;padding:8px 12px;margin:10px 0;border-radius:4px}
h2 .pts{float:right;font-size:16px;font-weight:600}
.err{background:#ffebe9;border-left:4px solid #cf222e;padding:8px 12px;margin:10px 0;border-radius:4px}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin-top:12px}
.plots figure{margin:0}.plots img{width:100%;height:auto;border:1px solid #eaeef2;border-radius:6px}
figcaption{font-size:13px;color:#656d76;text-align:center}
"""


# ----------------------------------------------------------------------------- data and plots
def thresholds(stage: StageResult) -> dict[str, float]:
    """The thresholds the model tier recorded in the result (reports never re-read course.toml)."""
    found = stage.details.get("thresholds") or {}
    return {str(k): float(v) for k, v in found.items() if isinstance(v, (int, float))}


def log_history(stage: StageResult) -> list[dict]:
    """The Trainer's log history: the result's own ``learning_curve`` (a report needs nothing but the
    result), else, for results written before it, output_dir/log_history.json; [] when there is none."""
    curve = stage.details.get("learning_curve")
    if isinstance(curve, list) and curve:
        return [e for e in curve if isinstance(e, dict)]
    out = stage.details.get("output_dir")
    try:
        data = json.loads((Path(out) / "log_history.json").read_text(encoding="utf-8")) if out else []
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def confusion_png(evaluation: dict) -> bytes | None:
    from matplotlib.figure import Figure

    matrix, labels = evaluation.get("confusion"), evaluation.get("labels") or []
    if not matrix:
        return None
    k = len(matrix)
    labels = labels if len(labels) == k else [str(i) for i in range(k)]
    fig = Figure(figsize=(4.6, 4.0))
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="Blues")
    top = max(max(row) for row in matrix) or 1
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=9,
                    color="white" if matrix[i][j] > top / 2 else "#1f2328")
    ax.set_xticks(range(k), labels, rotation=35 if k > 3 else 0, ha="right" if k > 3 else "center")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (hidden test split)", fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _png(fig)


def learning_curve_png(history: list[dict]) -> bytes | None:
    from matplotlib.figure import Figure

    train = [(e["step"], e["loss"]) for e in history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in history if "eval_loss" in e and "step" in e]
    if not train and not evals:
        return None
    fig = Figure(figsize=(4.6, 4.0))
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train, strict=True), color="#0969da", marker=".", label="training loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), color="#bf3989", marker="o", linestyle="--",
                label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Learning curve", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return _png(fig)


def plots(result: GradeResult) -> dict[str, bytes]:
    """File name -> PNG bytes of the model-tier plots: <stage>_confusion.png, <stage>_learning_curve.png."""
    out = {}
    for s in result.stages:
        if s.tier != "model":
            continue
        if s.details.get("evaluation") and (png := confusion_png(s.details["evaluation"])):
            out[f"{s.id}_confusion.png"] = png
        if png := learning_curve_png(log_history(s)):
            out[f"{s.id}_learning_curve.png"] = png
    return out


def metric_rows(stage: StageResult) -> list[dict]:
    """One row per metric: value, 95% interval, threshold and whether it is met (the check's verdict)."""
    ev, limits = stage.details.get("evaluation") or {}, thresholds(stage)
    verdict = {c.name: c.passed for c in stage.checks}
    rows = []
    for metric, label in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        if metric in ev:
            lo, hi = ev.get(f"{metric}_ci") or (float("nan"), float("nan"))
            t = limits.get(metric)
            rows.append({"metric": label, "value": ev[metric], "lo": lo, "hi": hi, "threshold": t,
                         "ok": None if t is None else verdict.get(metric, lo >= t)})
    return rows


def model_tables(s: StageResult) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(title, note, header, rows) of the model tier: metrics, zero-shot comparison, per class, confusions."""
    ev = s.details["evaluation"]
    yes_no = {None: "-", True: "yes", False: "no"}
    tables = [("Model on the hidden test split", f"{ev.get('n', '?')} hidden test texts; 95% intervals. A "
               "threshold is met when the interval's lower bound reaches it.",
               ["metric", "value", "95% interval", "threshold", "met"],
               [[r["metric"], f"{r['value']:.3f}", f"{r['lo']:.3f} - {r['hi']:.3f}",
                 "-" if r["threshold"] is None else f"{r['threshold']:.2f}", yes_no[r["ok"]]]
                for r in metric_rows(s)])]
    if zs := s.details.get("zero_shot"):
        tables.append(("Zero-shot comparison", f"{zs.get('method', 'zero-shot')}; agreement "
                       f"{zs.get('agreement', 0):.3f}; McNemar exact p = {zs.get('mcnemar_p', 1):.3g}",
                       ["model", "accuracy", "right where the other is wrong"],
                       [["fine-tuned", f"{zs.get('fine_tuned_accuracy', 0):.3f}",
                         str(zs.get("fine_tuned_only_right", 0))],
                        ["zero-shot", f"{zs.get('zero_shot_accuracy', 0):.3f}",
                         str(zs.get("zero_shot_only_right", 0))]]))
    if per := ev.get("per_class"):
        tables.append(("Per class", "", ["class", "precision", "recall", "F1", "support"],
                       [[n, *(f"{m.get(k, 0):.3f}" for k in ("precision", "recall", "f1")),
                         str(m.get("support", ""))] for n, m in per.items()]))
    if conf := ev.get("confusion"):
        labels = ev.get("labels") or [str(i) for i in range(len(conf))]
        tables.append(("Confusion matrix", "rows: true label; columns: predicted label",
                       ["true \\ predicted", *labels],
                       [[lab, *map(str, row)] for lab, row in zip(labels, conf, strict=False)]))
    return tables


def _fmt(x: float) -> str:
    return f"{x:g}"


def _failures(stage: StageResult) -> list[tuple[str, str]]:
    return [(c.name, check_text(stage, c)) for c in stage.checks if not c.passed]


def _sections(result: GradeResult):
    """The stages that get a section: failed checks, an error, or a scored model."""
    for s in result.stages:
        fails, model = _failures(s), bool(s.tier == "model" and s.details.get("evaluation"))
        if fails or s.error or model:
            yield s, fails, model


FIGURES = (("confusion", "Confusion matrix (rows: true label)"),
           ("learning_curve", "Training loss per step (log_history.json)"))


# ----------------------------------------------------------------------------- Markdown
def feedback_markdown(result: GradeResult, *, images: bool = True,
                      pngs: dict[str, bytes] | None = None) -> str:
    """Feedback as Markdown; with ``images`` it links the PNGs :func:`write_feedback` writes next to it."""
    pngs = (plots(result) if pngs is None else pngs) if images else {}
    model = f" (model: {md_code(result.model)})" if result.model else ""
    md = [f"# Feedback for {md_text(student_id(result))}", "",
          f"**Score: {_fmt(result.score)} / {_fmt(result.max_score)}**{model}", "",
          *([md_text(result.sandbox), ""] if result.sandbox else []),
          "| stage | tier | score | checks passed |", "|---|---|---:|---:|"]
    md += [f"| {md_text(s.id)} | {md_text(s.tier)} | {_fmt(s.score)}/{_fmt(s.max_score)} | "
           f"{sum(c.passed for c in s.checks)}/{len(s.checks)} |" for s in result.stages]
    warnings = getattr(result, "warnings", [])
    if warnings:
        md += ["", "## Notes", "", *(f"- {md_message(w)}" for w in warnings)]
    for s, fails, scored in _sections(result):
        md += ["", f"## {md_text(s.id)}: {md_trusted(s.title)} ({_fmt(s.score)}/{_fmt(s.max_score)})", ""]
        if s.error:
            md += [f"> **Error:** {md_message(stage_error_text(s))}", ""]
        md += [f"- ❌ {md_code(name)}: {md_message(text)}" for name, text in fails]
        if fails and s.hint:
            md += ["", f"**Hint:** {md_trusted(s.hint)}"]
        for title, note, header, rows in model_tables(s) if scored else ():
            md += ["", f"### {title}", *(["", note] if note else []), "", "| " + " | ".join(header) + " |",
                   "|---|" + "---:|" * (len(header) - 1), *("| " + " | ".join(map(md_text, r)) + " |" for r in rows)]
        md += [f"\n![{cap}]({s.id}_{key}.png)" for key, cap in FIGURES if f"{s.id}_{key}.png" in pngs]
    return "\n".join(md).rstrip() + "\n"


# ----------------------------------------------------------------------------- HTML
def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _bar(score: float, max_score: float) -> str:
    frac = score / max_score if max_score else 0.0
    cls = "full" if frac >= 1 else ("part" if frac > 0 else "none")
    return f'<span class="bar"><span class="{cls}" style="width:{max(frac, 0.02) * 100:.0f}%"></span></span>'


def _table(header: list[str], rows: list[list[str]]) -> str:
    cell = {"yes": '<span class="ok">yes</span>', "no": '<span class="bad">no</span>'}
    head = "".join(f'<th{"" if i == 0 else " class=num"}>{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td{"" if i == 0 else " class=num"}>{cell.get(v, _e(v))}</td>'
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="compact"><tr>{head}</tr>{body}</table>'


def feedback_html(result: GradeResult, *, pngs: dict[str, bytes] | None = None) -> str:
    """A self-contained HTML page (inline CSS, plots as data URIs, nothing loaded from anywhere)."""
    pngs = plots(result) if pngs is None else pngs
    sid = student_id(result)
    h = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
         "style-src 'unsafe-inline'\">",
         f"<title>Feedback for {_e(sid)}</title><style>{CSS}</style></head><body><main>",
         f'<div class="card"><h1>Feedback for {_e(sid)}</h1><div class="big">{_fmt(result.score)} '
         f'<span class="muted">/ {_fmt(result.max_score)} points</span></div>',
         f'<div class="muted">model: {_e(result.model or "-")}</div>',
         f'<div class="muted">{_e(result.sandbox or "sandbox: unknown")}</div></div>',
         '<div class="card"><h2>Scores</h2><table><tr><th>stage</th><th>tier</th><th class="num">score</th>'
         '<th></th><th class="num">checks passed</th></tr>']
    h += [f'<tr><td><b>{_e(s.id)}</b><br><span class="muted">{_e(s.title)}</span></td>'
          f'<td>{_e(s.tier)}</td><td class="num">{_fmt(s.score)}/{_fmt(s.max_score)}</td>'
          f'<td>{_bar(s.score, s.max_score)}</td>'
          f'<td class="num">{sum(c.passed for c in s.checks)}/{len(s.checks)}</td></tr>'
          for s in result.stages]
    h.append("</table></div>")
    if warnings := getattr(result, "warnings", []):
        h.append('<div class="card"><h2>Notes</h2><ul class="fails">'
                 + "".join(f'<li class="msg">{_e(w)}</li>' for w in warnings) + "</ul></div>")
    for s, fails, scored in _sections(result):
        h.append(f'<div class="card"><h2>{_e(s.id)}: {_e(s.title)}'
                 f'<span class="pts">{_fmt(s.score)}/{_fmt(s.max_score)}</span></h2>')
        if s.error:
            h.append(f'<div class="err msg"><b>Error:</b> {_e(stage_error_text(s))}</div>')
        if fails:
            h.append('<h3>Failed checks</h3><ul class="fails">')
            h += [f'<li><code>{_e(n)}</code><div class="msg">{_e(t)}</div></li>' for n, t in fails]
            h.append("</ul>")
            if s.hint:
                h.append(f'<div class="hint"><b>Hint:</b> {_e(s.hint)}</div>')
        plotted = f"{s.id}_confusion.png" in pngs  # the confusion matrix is shown as a plot instead
        for title, note, header, rows in model_tables(s) if scored else ():
            if not (plotted and title == "Confusion matrix"):
                h += [f"<h3>{_e(title)}</h3>", f'<p class="muted">{_e(note)}</p>' if note else "",
                      _table(header, rows)]
        figs = [f'<figure><img src="data:image/png;base64,{base64.b64encode(pngs[n]).decode("ascii")}" '
                f'alt="{_e(cap)}"><figcaption>{_e(cap)}</figcaption></figure>'
                for n, cap in ((f"{s.id}_{key}.png", cap) for key, cap in FIGURES) if n in pngs]
        if figs:
            h.append('<div class="plots">' + "".join(figs) + "</div>")
        if scored and f"{s.id}_learning_curve.png" not in pngs:
            h.append('<p class="muted">No learning curve: no log_history.json with training losses.</p>')
        h.append("</div>")
    h.append("</main></body></html>\n")
    return "\n".join(h)


def write_feedback(result: GradeResult, folder: str | Path) -> dict[str, Path]:
    """Write feedback.md (with its PNGs next to it) and the self-contained feedback.html into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, pngs = {}, plots(result)
    for name, png in pngs.items():
        (folder / name).write_bytes(png)
        written[name] = folder / name
    (folder / "feedback.md").write_text(feedback_markdown(result, pngs=pngs), encoding="utf-8")
    (folder / "feedback.html").write_text(feedback_html(result, pngs=pngs), encoding="utf-8")
    written["feedback.md"], written["feedback.html"] = folder / "feedback.md", folder / "feedback.html"
    return written
