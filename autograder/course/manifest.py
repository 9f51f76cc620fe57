"""The course manifest (course.toml) as dataclasses.

Everything that needs a stage's module, points, hints, timeout or threshold reads it from
here, so a stage is described in exactly one place.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from autograder import REPO_ROOT
from autograder.procs import setting


@dataclass(frozen=True)
class Stage:
    id: str
    title: str
    module: str
    timeout: float
    hints: tuple[str, ...]
    checks: dict[str, float] = field(default_factory=dict)
    check_hints: dict[str, int] = field(default_factory=dict)
    # hidden checks with no public counterpart, each with the reason it stays hidden
    hidden_only: dict[str, str] = field(default_factory=dict)
    # wall-clock seconds for the whole stage (every check together); default timeout + 60: a
    # submission that stalls each call cannot hold the grader for timeout x number of checks
    stage_timeout: float = 0.0

    @property
    def points(self) -> float:
        return float(sum(self.checks.values()))

    @property
    def budget(self) -> float:
        return self.stage_timeout or self.timeout + 60

    def hint_number(self, check: str) -> int:
        """1-based number of the hint for a failed check: ``[stages.check_hints]``, else the first hint.

        Every check of the manifest has an entry (a test says so); a check name the manifest does not
        know (a student's own test) gets the first hint.
        """
        number = self.check_hints.get(check.split("[", 1)[0], 1)
        return min(max(number, 1), max(len(self.hints), 1))

    def hint_for(self, check: str) -> str:
        """The hint text for a failed check (see :meth:`hint_number`); '' when the stage has none."""
        return self.hints[self.hint_number(check) - 1] if self.hints else ""

    @property
    def grader_file(self) -> Path:
        return REPO_ROOT / "autograder" / "grading" / "graders" / f"test_{self.module}.py"

    @property
    def public_check_file(self) -> str:
        """Path of the public checks, relative to a submission folder."""
        return f"checks/test_{self.module}.py"

    def public_checks(self, root: Path) -> list[str]:
        """Names of the public checks in ``root/checks/test_<module>.py``, read without importing it.

        A public check carries the name of the hidden check it mirrors, so one ``check_hints``
        table gives the hint for a failure on either side.
        """
        import ast

        path = Path(root) / self.public_check_file
        if not path.exists():
            return []
        tree = ast.parse(path.read_text(encoding="utf-8"))
        return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


@dataclass(frozen=True)
class Notebook:
    """A notebook of the model tier: executed by papermill, its saved model scored on a hidden split."""

    id: str
    title: str
    notebook: str
    dataset: str
    timeout: float
    parameters: dict
    thresholds: dict[str, float]
    checks: dict[str, float]
    # Seconds the trusted evaluator may spend loading the saved model and scoring the hidden split
    # (course.toml ``score_timeout``; older manifests without it get the default): a stalled scoring
    # then fails the thresholds with a message instead of holding the grade.
    score_timeout: float = 600.0
    # A score above these (course.toml ``review_above``: the best correct run of the calibration plus an
    # interval's width) is flagged for a person to look at: possibly trained on the held-out texts.
    review_above: dict[str, float] = field(default_factory=dict)

    @property
    def points(self) -> float:
        return float(sum(self.checks.values()))


@dataclass(frozen=True)
class Limits:
    """Resource limits of one jailed job (course.toml ``[sandbox]``); a job that exceeds one is
    told which, in a learner message."""

    memory_mb: int = 8192  # address space of each process (RLIMIT_AS)
    processes: int = 256
    cpu_seconds: int = 900
    file_size_mb: int = 512
    open_files: int = 1024
    resident_mb: int = 4096  # the job's memory cgroup: resident memory, tmpfs and page cache together
    disk_mb: int = 1024  # /scratch, /tmp and /dev/shm together (one size-capped tmpfs)
    disk_files: int = 20000  # files and folders in those, together
    judge_memory_mb: int = 6144  # the judge's own memory cgroup (it reads what the submission sends)

    def scaled(self, **overrides) -> Limits:
        return Limits(**{**self.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


@dataclass(frozen=True)
class SubmissionCaps:
    """What a submission may hold: refused with a message beyond these (zips and folders alike)."""

    max_file_mb: int = 20
    max_total_mb: int = 200
    max_files: int = 2000


@dataclass(frozen=True)
class Course:
    title: str
    model: str
    seed: int
    stages: tuple[Stage, ...]
    raw: dict
    notebooks: tuple[Notebook, ...] = ()
    limits: Limits = Limits()
    model_limits: Limits = Limits()
    caps: SubmissionCaps = SubmissionCaps()

    def notebook(self, notebook_id: str) -> Notebook:
        for nb in self.notebooks:
            if notebook_id in (nb.id, nb.notebook):
                return nb
        raise KeyError(f"unknown notebook {notebook_id!r}; course.toml lists {[n.id for n in self.notebooks]}")

    def stage(self, stage_id: str) -> Stage:
        for stage in self.stages:
            if stage.id == stage_id or stage.module == stage_id:
                return stage
        known = ", ".join(s.id for s in self.stages)
        raise KeyError(f"unknown stage {stage_id!r}; the stages are: {known}")

    @property
    def max_score(self) -> float:
        return sum(s.points for s in self.stages) + sum(n.points for n in self.notebooks)


def manifest_path() -> Path:
    return Path(setting("COURSE_MANIFEST") or REPO_ROOT / "course.toml")


class ManifestError(ValueError):
    """course.toml holds something the course kit does not know: a misspelt key is said, never dropped."""


def _fields(cls) -> set[str]:
    return set(cls.__dataclass_fields__)


def check_keys(raw: dict, where: str = "course.toml") -> None:
    """Every key of the manifest is one the kit reads; anything else (``memory_gb``, ``timout``) is
    an error naming the key and the allowed ones, instead of a limit silently left at its default."""
    sections = {
        "": (raw, {"course", "stages", "sandbox", "cluster", "datasets", "notebooks"}),
        "[course]": (raw.get("course", {}), {"title", "model", "seed", "default_timeout"}),
        "[sandbox]": (raw.get("sandbox", {}), _fields(Limits) | {"model_tier", "submission"}),
        "[sandbox.model_tier]": (raw.get("sandbox", {}).get("model_tier", {}), _fields(Limits)),
        "[sandbox.submission]": (raw.get("sandbox", {}).get("submission", {}), _fields(SubmissionCaps)),
        "[cluster]": (raw.get("cluster", {}), {"slurm"}),
    }
    for i, stage in enumerate(raw.get("stages", [])):
        sections[f"[[stages]] {stage.get('id', i + 1)}"] = (stage, _fields(Stage))
    for i, notebook in enumerate(raw.get("notebooks", [])):
        sections[f"[[notebooks]] {notebook.get('id', i + 1)}"] = (notebook, _fields(Notebook))
    for name, (table, allowed) in sections.items():
        unknown = sorted(set(table) - allowed) if isinstance(table, dict) else []
        if unknown:
            raise ManifestError(f"{where} {name or '(top level)'}: unknown key(s) {', '.join(unknown)}; "
                                f"the allowed ones are: {', '.join(sorted(allowed))}")


@lru_cache(maxsize=4)
def _load(path: str) -> Course:
    raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    check_keys(raw, path)
    meta = raw["course"]
    default_timeout = float(meta.get("default_timeout", 120))
    stages = tuple(
        Stage(
            id=s["id"],
            title=s["title"],
            module=s["module"],
            timeout=float(s.get("timeout", default_timeout)),
            hints=tuple(s.get("hints", ())),
            checks={k: float(v) for k, v in s.get("checks", {}).items()},
            check_hints={k: int(v) for k, v in s.get("check_hints", {}).items()},
            hidden_only={k: str(v) for k, v in s.get("hidden_only", {}).items()},
            stage_timeout=float(s.get("stage_timeout", 0)),
        )
        for s in raw["stages"]
    )
    notebooks = tuple(
        Notebook(
            id=n["id"], title=n["title"], notebook=n["notebook"], dataset=n["dataset"],
            timeout=float(n.get("timeout", default_timeout)), parameters=dict(n.get("parameters", {})),
            thresholds={k: float(v) for k, v in n.get("thresholds", {}).items()},
            checks={k: float(v) for k, v in n.get("checks", {}).items()},
            score_timeout=float(n.get("score_timeout", Notebook.score_timeout)),
            review_above={k: float(v) for k, v in n.get("review_above", {}).items()},
        )
        for n in raw.get("notebooks", [])
    )
    sandbox = raw.get("sandbox", {})
    limits = Limits(**{k: int(v) for k, v in sandbox.items() if k in Limits.__dataclass_fields__})
    model_limits = limits.scaled(**{k: int(v) for k, v in sandbox.get("model_tier", {}).items()
                                    if k in Limits.__dataclass_fields__})
    caps = SubmissionCaps(**{k: int(v) for k, v in sandbox.get("submission", {}).items()
                             if k in SubmissionCaps.__dataclass_fields__})
    return Course(title=meta["title"], model=meta["model"], seed=int(meta["seed"]), stages=stages, raw=raw,
                  notebooks=notebooks, limits=limits, model_limits=model_limits, caps=caps)


def load_course(path: str | Path | None = None) -> Course:
    """Load (and cache) the manifest; COURSE_MANIFEST overrides the repository's course.toml."""
    return _load(str(path or manifest_path()))


def strip_thresholds(manifest_text: str) -> str:
    """course.toml without the model tier's thresholds (and their calibration comments): what a
    notebook's jailed kernel gets, which has no use for them."""
    lines = manifest_text.splitlines()
    kept = [ln for ln in lines if not re.match(r"\s*thresholds\s*=", ln) and not ln.lstrip().startswith("# calibr")]
    return "\n".join(kept) + "\n"
