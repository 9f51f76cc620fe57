"""Mutation tests of the zero-shot graders: each plausible mistake in the reference solution must cost points.

A mutant is the reference solution with one text replacement; it is graded like a submission, and the
check that should catch it must fail (so the stage scores below full marks).
"""

from __future__ import annotations

import ast
import shutil

import pytest

from autograder import REPO_ROOT
from autograder.grading import grade_stage
from autograder.manifest import load_course

STAGE = load_course().stage("zero_shot")
MODULE = f"{STAGE.module}.py"

# id: (text in the solution, its replacement, the check that must fail)
MUTANTS = {
    "single-label-softmax-over-nli-classes": (
        "scores = logits[:, ent].softmax(dim=0)",
        "scores = logits.softmax(dim=-1)[:, ent]",
        "test_nli_single_label_matches_pipeline",
    ),
    "multi-label-softmax-over-labels": (
        "scores = logits[:, [con, ent]].softmax(dim=-1)[:, 1]",
        "scores = logits[:, [con, ent]].softmax(dim=0)[:, 1]",
        "test_nli_multi_label_matches_pipeline",
    ),
    "entailment-index-hard-coded-in-nli": (
        "    ent = entailment_index(model)\n",
        "    ent = 2\n",
        "test_nli_label_indices_found_by_name",
    ),
    "entailment-index-returns-2": (
        "    for name, index in model.config.label2id.items():\n"
        '        if name.lower().startswith("entail"):\n'
        "            return int(index)\n",
        "    return 2\n",
        "test_nli_label_indices_found_by_name",
    ),
    "contradiction-index-hard-coded-0": (
        "con = contradiction_index(model) if multi_label else None",
        "con = 0",
        "test_nli_multi_label_matches_pipeline",
    ),
    "mean-pool-includes-padding": (
        "    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)\n"
        "    summed = (last_hidden_state * mask).sum(dim=1)\n"
        "    counts = mask.sum(dim=1).clamp(min=1e-9)\n"
        "    return summed / counts\n",
        "    return last_hidden_state.mean(dim=1)\n",
        "test_mean_pool_ignores_padding",
    ),
    "embed-not-normalised": (
        "chunks.append(torch.nn.functional.normalize(pooled, p=2, dim=-1).cpu())",
        "chunks.append(pooled.cpu())",
        "test_embed_matches_sentence_transformers",
    ),
    "mcnemar-one-sided": (
        "b01 + b10, 0.5).pvalue)",
        "b01 + b10, 0.5, alternative='less').pvalue)",
        "test_compare_predictions_counts_and_mcnemar",
    ),
    "agreement-counts-correctness": (
        '"agreement": float(np.mean(a == b))',
        '"agreement": float(np.mean(right_a == right_b))',
        "test_compare_predictions_counts_and_mcnemar",
    ),
}


def _submission(tmp_path, source: str):
    folder = tmp_path / "solutions"
    shutil.copytree(REPO_ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / MODULE).write_text(source)
    return folder


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_mutant_loses_points(mutant, tmp_path):
    old, new, check = MUTANTS[mutant]
    source = (REPO_ROOT / "solutions" / MODULE).read_text()
    assert source.count(old) == 1, f"mutant {mutant!r}: its target text is not (exactly once) in the solution"
    result = grade_stage(STAGE, _submission(tmp_path, source.replace(old, new)))
    by_name = {c.name: c for c in result.checks}
    assert not result.error, result.error
    assert result.score < result.max_score, f"mutant {mutant!r} gets full marks"
    assert not by_name[check].passed, f"mutant {mutant!r} passes {check}"
    assert by_name[check].message, f"{check} fails without a message"


def _echo_source() -> str:
    """The stub with every function returning its first argument."""
    source = (REPO_ROOT / "exercises" / MODULE).read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        raises = [s for s in node.body if isinstance(s, ast.Raise)]
        assert raises, f"{node.name} of the stub does not raise"
        lines[raises[0].lineno - 1] = " " * raises[0].col_offset + f"return {node.args.args[0].arg}"
    return "\n".join(lines) + "\n"


def test_stub_returning_its_input_scores_zero(tmp_path):
    result = grade_stage(STAGE, _submission(tmp_path, _echo_source()))
    passed = [c.name for c in result.checks if c.passed]
    assert passed == [] and result.score == 0, f"a stub that returns its input passes {passed}"
    assert all(c.message for c in result.checks)


def test_grader_embedding_reference_is_sentence_transformers():
    """The graders embed with their own copy of the recipe (fast); it must equal sentence-transformers'."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from autograder.graders.test_stage6_zero_shot import SENTENCES, reference_embeddings
    from autograder.models import packaged_encoder_path

    path = packaged_encoder_path()
    texts = [*SENTENCES, "This text is about music.", "a very long review " * 120]
    ours = reference_embeddings(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), texts)
    theirs = SentenceTransformer(str(path), device="cpu").encode(texts, normalize_embeddings=True,
                                                                  convert_to_tensor=True)
    assert torch.allclose(ours, theirs.cpu().float(), atol=1e-5), (ours - theirs.cpu()).abs().max()
