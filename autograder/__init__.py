"""Autograder for the fine-tuning course: manifest, model/data resolution, graders, reports."""

from pathlib import Path

__version__ = "0.1.0"

#: The folder above the package: the course's repository or a student's copy (course.toml and
#: datasets_cache/ live here).
REPO_ROOT = Path(__file__).resolve().parent.parent
