"""Data from outside the course: a Hub dataset, a Hub-style folder, or JSONL files.

The course's own splits are hash-checked (:func:`autograder.course.data.load_splits`): every
machine must train and grade on the same rows. Other data cannot be checked that way, so it is
checked for what the notebooks need instead: the splits asked for exist, each has a text column
and a label column, and the labels are the course's (by name, in any order, or as indices in
range). It is brought to the course's sizes (stratified, seeded) unless ``full=True``, because the
real dair-ai/emotion has 12x the course's training rows: hours of CPU instead of minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from autograder.course.data_spec import DataIntegrityError, manifest, spec

TEXT_COLUMNS = ("text", "sentence", "content", "review")


class ExternalDataError(DataIntegrityError):
    """Outside data that does not have the shape or the labels the course needs."""


def course_sizes(name: str) -> dict[str, int]:
    """Rows per split of the course's own dataset: the manifest's sizes, else the recorded splits."""
    sizes = spec(name).get("sizes")
    if sizes:
        out = {s: int(n) for s, n in sizes.items()}
        out["test"] = out.get("test", 0) + int(spec(name).get("extra_test", 0))
        return out
    return {s: int(v["rows"]) for s, v in manifest().get(name, {}).get("splits", {}).items()}


def _seed(name: str) -> int:
    """The dataset's seed; the course's where the manifest gives none (a student copy's course.toml)."""
    from autograder.course.manifest import load_course

    return int(spec(name).get("seed", load_course().seed))


def sample_to_sizes(dataset, sizes: dict[str, int], seed: int):
    """Each split cut to ``sizes[split]`` rows, keeping each label's share (stratified, seeded)."""
    import numpy as np
    from datasets import DatasetDict

    rng = np.random.default_rng(seed)
    out = {}
    for split, ds in dataset.items():
        want = sizes.get(split)
        if not want or len(ds) <= want:
            out[split] = ds
            continue
        by_label: dict[int, list[int]] = {}
        for i, y in enumerate(ds["label"]):
            by_label.setdefault(int(y), []).append(i)
        quota = {y: len(idx) * want / len(ds) for y, idx in by_label.items()}
        counts = {y: int(q) for y, q in quota.items()}
        for y in sorted(quota, key=lambda y: (counts[y] - quota[y], y))[:want - sum(counts.values())]:
            counts[y] += 1  # largest remainders first: the counts add up to exactly ``want``
        keep = [int(i) for y in sorted(by_label) for i in rng.choice(by_label[y], counts[y], replace=False)]
        out[split] = ds.select(sorted(keep))
    return DatasetDict(out)


def _read(folder: Path, name: str):
    """(DatasetDict, layout) of a folder: course-style JSONL, save_to_disk, or a Hub repository."""
    from datasets import load_dataset, load_from_disk

    for base in (folder / name, folder):
        files = {p.stem: str(p) for p in sorted(base.glob("*.jsonl"))}
        if files:
            return load_dataset("json", data_files=files), f"JSONL files in {base}"
    if (folder / "dataset_dict.json").is_file():
        return load_from_disk(str(folder)), "a DatasetDict saved with save_to_disk"
    return load_dataset(str(folder)), "a Hub-style dataset folder"


def _text_column(ds, where: str) -> str:
    for column in TEXT_COLUMNS:
        if column in ds.column_names:
            return column
    raise ExternalDataError(f"{where} has no text column (columns: {ds.column_names}); name it 'text'")


def _label_indices(ds, names: list[str], where: str) -> list[int]:
    """The labels as the course's indices: by name when the data names them, else indices in range."""
    if "label" not in ds.column_names:
        raise ExternalDataError(f"{where} has no 'label' column (columns: {ds.column_names})")
    feature = ds.features["label"]
    values = list(ds["label"])
    own = list(getattr(feature, "names", None) or [])
    if own:
        unknown = sorted(set(own) - set(names))
        if unknown:
            raise ExternalDataError(f"{where} has the labels {own}; the course's are {names} ({unknown} unknown)")
        return [names.index(own[v]) for v in values]
    if all(isinstance(v, str) for v in values):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ExternalDataError(f"{where} has labels {unknown[:5]} that are not the course's {names}")
        return [names.index(v) for v in values]
    bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < len(names)]
    if bad:
        raise ExternalDataError(f"{where} has labels {bad[:5]}: expected the names {names} or indices "
                                f"0..{len(names) - 1}")
    return values


def load_external(name: str, folder: str | Path, splits: Iterable[str] = ("train", "validation"), *,
                  full: bool = False, seed: int | None = None, quiet: bool = False):
    """Load outside data for dataset ``name`` as the course's DatasetDict (text, ClassLabel label)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"data_dir {folder} does not exist")
    names = list(spec(name)["labels"])
    try:
        raw, layout = _read(folder, name)
    except ExternalDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable layout becomes one clear message
        raise ExternalDataError(f"{folder} could not be read as a dataset ({type(exc).__name__}: {str(exc)[:200]}); "
                                "give a folder with train.jsonl / validation.jsonl (text, label), a Hub dataset "
                                "repository, or a DatasetDict saved with save_to_disk") from None
    features = Features({"label": ClassLabel(names=names), "text": Value("string")})
    out = {}
    for split in splits:
        if split not in raw:
            raise ExternalDataError(f"{folder} ({layout}) has no {split!r} split; it has {sorted(raw)}")
        ds, where = raw[split], f"the {split!r} split of {folder}"
        text = _text_column(ds, where)
        out[split] = Dataset.from_dict({"label": _label_indices(ds, names, where), "text": list(ds[text])},
                                       features=features)
    data = DatasetDict(out)
    if not full:
        data = sample_to_sizes(data, course_sizes(name), _seed(name) if seed is None else int(seed))
    if not quiet:
        rows = ", ".join(f"{s} {len(d)}" for s, d in data.items())
        sized = "all rows (full=True)" if full else "sampled to the course's sizes, stratified"
        print(f"{name}: outside data from {folder} ({layout}): {rows} rows, {sized}; checked for shape and "
              "labels, not against the course's hashes")
    return data
