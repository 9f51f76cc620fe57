"""The class at a glance: ``grading_batch/class_report.html``, rendered from the batch's results.

Why: after a batch an instructor asks which checks most students failed (and what they were told),
how the model tier's accuracies spread against the thresholds, who is missing or late, and whether
every job ran in the sandbox. One self-contained page (inline CSS and SVG, a strict CSP, nothing
loaded) answers that; every text from a submission is escaped.
"""

from __future__ import annotations

import csv
import html
import re
import statistics
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from autograder.reports.exports import check_text, student_id
from autograder.reports.feedback import CSS, thresholds
from autograder.reports.results import GradeResult, StageResult
from autograder.sandbox.plain_files import last_change

EXTRA_CSS = """.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}
.grid figure{margin:0;border:1px solid #eaeef2;border-radius:6px;padding:6px}svg{width:100%;height:auto}
.tag{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600}
.on{background:#dafbe1;color:#1a7f37}.off{background:#ffebe9;color:#cf222e}"""
BAR, PASS, FAIL = "#0969da", "#1a7f37", "#cf222e"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _g(x: float) -> str:
    return f"{x:.3g}" if isinstance(x, float) and not float(x).is_integer() else f"{x:g}"


# ----------------------------------------------------------------------------- what the page shows
def message_form(message: str) -> str:
    """A message's common form: first line, numbers as #, at most 140 characters (so that the
    same mistake with different numbers counts once)."""
    first = next((line.strip() for line in str(message).splitlines() if line.strip()), "(no message)")
    return re.sub(r"\b\d+(\.\d+)?\b", "#", first)[:140]


def failed_checks(results: list[GradeResult], top: int = 12) -> list[dict]:
    """The checks failed most often: stage, check, how many failed, their most common message forms."""
    fails: dict[tuple[str, str], Counter] = {}
    for r in results:
        for s in r.stages:
            for c in s.checks:
                if not c.passed:
                    fails.setdefault((s.id, c.name), Counter())[message_form(check_text(s, c))] += 1
    rows = [{"stage": st, "check": ch, "failed": sum(cnt.values()), "messages": cnt.most_common(3)}
            for (st, ch), cnt in fails.items()]
    return sorted(rows, key=lambda r: (-r["failed"], r["stage"], r["check"]))[:top]


def _stages(results: list[GradeResult]) -> list[str]:
    order = next((r.course_stages for r in results if r.course_stages), [])
    seen = [s.id for r in results for s in r.stages if s.id != "submission"]
    return [s for s in order if s in seen] + sorted(set(seen) - set(order), key=seen.index)


def _stage(result: GradeResult, sid: str) -> StageResult | None:
    return next((s for s in result.stages if s.id == sid), None)


def missing_and_late(results: list[GradeResult], submissions: Path | None,
                     deadline: datetime | None = None) -> list[tuple[str, str, str]]:
    """(student, "missing", "late" or "not graded", why): roster entries of ``SUBMISSIONS/collect.csv`` that were not
    collected or graded, submissions that could not be graded, and with ``deadline`` work after it
    (the commit date from collect.csv, else the result's ``submitted``, else the newest file's time)."""
    graded = {student_id(r) for r in results}
    rows: list[tuple[str, str, str]] = []
    log: dict[str, dict] = {}
    if submissions is not None and (submissions / "collect.csv").is_file():
        with open(submissions / "collect.csv", newline="", encoding="utf-8") as f:
            log = {row.get("student", ""): row for row in csv.DictReader(f) if row.get("student")}
    for sid, row in sorted(log.items()):
        if row.get("status") not in ("ok", "skipped") or sid not in graded:
            late = "before the deadline" in row.get("message", "")
            rows.append((sid, "late" if late else "missing", row.get("message") or "no submission was graded"))
    for r in results:
        note = _stage(r, "submission")
        if note is not None and note.error:
            rows.append((student_id(r), "not graded", note.error))
    if deadline is not None:
        for r in results:
            sid = student_id(r)
            stamp = log.get(sid, {}).get("committed_at", "") or r.submitted  # the result's own, since it has one
            when = datetime.fromisoformat(stamp) if stamp else None
            if when is None and submissions is not None:  # a result written before results had it
                entry = next((p for p in (submissions / sid, submissions / f"{sid}.zip") if p.exists()), None)
                stamp = last_change(entry) if entry else ""
                when = datetime.fromisoformat(stamp) if stamp else None
            if when is not None and when.astimezone(UTC) > deadline.astimezone(UTC):
                rows.append((sid, "late", f"last change {when.isoformat(timespec='minutes')}, after the deadline"))
    return rows


# ----------------------------------------------------------------------------- SVG plots
def histogram_svg(values: list[float], lo: float, hi: float, *, bins: int = 10, title: str = "",
                  threshold: float | None = None, unit: str = "") -> str:
    """A histogram as inline SVG (bars, axis labels, an optional threshold line)."""
    w, h, left, bottom, top = 300, 170, 30, 26, 22
    width = (hi - lo) / bins if hi > lo else 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / width)))] += 1
    peak = max(counts, default=0) or 1
    bw = (w - left - 8) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(title)}">',
             f'<text x="{w / 2}" y="14" text-anchor="middle" font-size="12" font-weight="600">{_e(title)}</text>',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - 8}" y2="{h - bottom}" stroke="#8c959f"/>',
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="10">{peak}</text>',
             f'<text x="{left - 4}" y="{h - bottom}" text-anchor="end" font-size="10">0</text>']
    for i, n in enumerate(counts):
        bar_h = (h - bottom - top) * n / peak
        colour = BAR if threshold is None else (PASS if lo + (i + 0.5) * width >= threshold else FAIL)
        parts.append(f'<rect class="col" x="{left + i * bw + 1:.1f}" y="{h - bottom - bar_h:.1f}" width="{bw - 2:.1f}" '
                     f'height="{bar_h:.1f}" fill="{colour}"><title>{_g(lo + i * width)}-{_g(lo + (i + 1) * width)}'
                     f"{unit}: {n}</title></rect>")
    for x in (lo, (lo + hi) / 2, hi):
        px = left + (x - lo) / (hi - lo or 1) * (w - left - 8)
        parts.append(f'<text x="{px:.1f}" y="{h - bottom + 13}" text-anchor="middle" font-size="10">'
                     f"{_g(x)}{unit}</text>")
    if threshold is not None and lo <= threshold <= hi:
        px = left + (threshold - lo) / (hi - lo or 1) * (w - left - 8)
        parts.append(f'<line class="threshold" x1="{px:.1f}" y1="{top - 4}" x2="{px:.1f}" y2="{h - bottom}" '
                     f'stroke="#1f2328" stroke-dasharray="4 3"/><text x="{px + 3:.1f}" y="{top + 4}" font-size="10">'
                     f"threshold {_g(threshold)}</text>")
    parts.append(f'<text x="{w / 2}" y="{h - 2}" text-anchor="middle" font-size="10">{len(values)} students</text>')
    return "".join(parts) + "</svg>"


def _score_plots(results: list[GradeResult]) -> list[str]:
    figs = []
    totals = [r.score for r in results]
    top = max((r.max_score for r in results), default=0.0)
    figs.append(histogram_svg(totals, 0.0, top or 1.0, title="Total score"))
    for sid in _stages(results):
        stages = [s for r in results if (s := _stage(r, sid)) is not None]
        top = max((s.max_score for s in stages), default=0.0) or 1.0
        bins = int(top) if float(top).is_integer() and top <= 12 else 10
        figs.append(histogram_svg([s.score for s in stages], 0.0, top, bins=bins, title=f"{sid} (out of {_g(top)})"))
    return figs


def _lower_bound(evaluation: dict, metric: str) -> float:
    """What the threshold is compared with: the interval's lower bound (the value when none was recorded)."""
    ci = evaluation.get(f"{metric}_ci")
    ok = isinstance(ci, list | tuple) and ci and isinstance(ci[0], int | float)
    return float(ci[0]) if ok else float(evaluation[metric])


def _model_plots(results: list[GradeResult]) -> list[str]:
    figs = []
    for sid in _stages(results):
        stages = [s for r in results if (s := _stage(r, sid)) is not None and s.tier == "model"]
        for metric in ("accuracy", "macro_f1"):
            values = [_lower_bound(ev, metric) for s in stages if isinstance(ev := s.details.get("evaluation"), dict)
                      and isinstance(ev.get(metric), int | float)]
            limit = next((thresholds(s).get(metric) for s in stages if metric in thresholds(s)), None)
            if values or limit is not None:
                figs.append(histogram_svg(values, 0.0, 1.0, bins=20, threshold=limit,
                                          title=f"{sid}: {metric.replace('_', '-')}, lower 95% bound"))
    return figs


# ----------------------------------------------------------------------------- the page
def _table(header: list[str], rows: list[list[str]]) -> str:
    """Rows are already HTML (cells escaped by the caller)."""
    head = "".join(f"<th>{_e(x)}</th>" for x in header)
    return f"<table><tr>{head}</tr>" + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>"
                                                for r in rows) + "</table>"


def _review_card(results: list[GradeResult]) -> str:
    """Grades that stand only after a person looked: a model-tier score above anything correct work reached
    in the calibration, hidden test texts in a submission's files (``GradeResult.needs_review``)."""
    rows = [[_e(student_id(r)), f'<span class="bad msg">{_e(line)}</span>']
            for r in sorted(results, key=student_id) for line in r.needs_review()]
    note = ("A score far above what correct work reached in the calibration, or hidden test texts found in a "
            "submission's files: the score stands as graded until someone looks (the sentiment texts' source "
            "is public).")
    body = _table(["student", "what to look at"], rows) if rows else "<p>Nothing to review.</p>"
    return f'<div class="card"><h2>Needs review</h2><p class="muted">{_e(note)}</p>{body}</div>'


def class_report_html(results: list[GradeResult], *, submissions: Path | None = None,
                      deadline: datetime | None = None, title: str | None = None) -> str:
    """The page: summary, score distributions, most failed checks, model tier, missing and late, sandbox."""
    title = title or next((r.course for r in results if r.course), "Class report")
    totals = [r.score for r in results]
    off = [r for r in results if not r.sandbox.startswith("sandbox: on")]
    summary = (f"{len(results)} students graded; total score median {_g(statistics.median(totals))}, mean "
               f"{_g(round(statistics.fmean(totals), 2))} of {_g(max(r.max_score for r in results))}"
               if results else "no results")
    h = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
         "style-src 'unsafe-inline'\">",
         f"<title>Class report: {_e(title)}</title><style>{CSS}{EXTRA_CSS}</style></head><body><main>",
         f'<div class="card"><h1>Class report</h1><div class="muted">{_e(title)}</div>',
         f'<div class="big">{_e(summary)}</div><div class="muted">'
         + ("every job ran in the sandbox" if not off else f'<span class="bad">{len(off)} job(s) ran without the '
                                                            "sandbox</span>") + "</div></div>"]
    h.append(_review_card(results))
    h.append('<div class="card"><h2>Score distribution per stage</h2><div class="grid">'
             + "".join(f"<figure>{svg}</figure>" for svg in _score_plots(results)) + "</div></div>")
    rows = [[f"<code>{_e(r['stage'])}</code>", f"<code>{_e(r['check'])}</code>", f"{r['failed']}/{len(results)}",
             "<ul class=\"fails\">" + "".join(f'<li class="msg">{n}&times; {_e(m)}</li>' for m, n in r["messages"])
             + "</ul>"] for r in failed_checks(results)]
    h.append('<div class="card"><h2>Checks failed most often</h2><p class="muted">The most common forms of '
             "each check's messages (numbers shown as #).</p>"
             + (_table(["stage", "check", "failed", "messages"], rows) if rows else "<p>No check failed.</p>")
             + "</div>")
    model = _model_plots(results)
    note = ("Each student's lower bound of the 95% interval on the hidden test split: a check passes when it "
            "reaches the dashed threshold (green bars).")
    body = (f'<p class="muted">{note}</p><div class="grid">' + "".join(f"<figure>{svg}</figure>" for svg in model)
            + "</div>") if model else "<p>The model tier was not graded in this batch.</p>"
    h.append(f'<div class="card"><h2>Model tier: scores against the thresholds</h2>{body}</div>')
    absent = missing_and_late(results, submissions, deadline)
    rows = [[_e(s), f'<span class="bad">{_e(k)}</span>', f'<span class="msg">{_e(w)}</span>'] for s, k, w in absent]
    none = "None: every student was collected and graded" + (" on time." if deadline else " (no deadline given).")
    h.append('<div class="card"><h2>Missing and late submissions</h2>'
             + (_table(["student", "status", "why"], rows) if rows else f"<p>{none}</p>") + "</div>")
    jobs = []
    for r in sorted(results, key=student_id):
        on = "on" if r.sandbox.startswith("sandbox: on") else "off"
        jobs.append([_e(student_id(r)), f'<span class="tag {on}">{on}</span>',
                     f'<span class="muted">{_e(r.sandbox or "sandbox: unknown")}</span>',
                     f"{_g(r.score)}/{_g(r.max_score)}"])
    h.append('<div class="card"><h2>Sandbox status of every job</h2>'
             + _table(["student", "sandbox", "status", "score"], jobs) + "</div>")
    h.append("</main></body></html>\n")
    return "\n".join(h)


def write_class_report(results: list[GradeResult], path: str | Path, *, submissions: Path | None = None,
                       deadline: datetime | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(class_report_html(results, submissions=submissions, deadline=deadline), encoding="utf-8")
    return path
