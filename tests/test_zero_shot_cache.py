"""The evaluator's zero-shot comparison embeds the hidden texts once per encoder, not once per submission."""

from __future__ import annotations

from autograder.course.models import tiny_model_dir

# transformers and the evaluator (torch) are imported in the tests: collecting the suite costs none of it.

TEXTS = ["i am so happy today", "this makes me furious", "i miss you", "what a shock"]
LABELS = ["joy", "anger", "sadness", "surprise"]


def test_zero_shot_predictions_are_computed_once_and_keyed(tmp_path, monkeypatch):
    import transformers
    from transformers import AutoTokenizer

    from autograder.grading import evaluator

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    path = str(tiny_model_dir("distilbert-base"))
    tok = AutoTokenizer.from_pretrained(path)
    first = evaluator.embedding_zero_shot_comparison(TEXTS, [0, 1, 2, 3], [0, 1, 2, 0], LABELS, path, tok)
    assert len(list((tmp_path / "zero_shot").glob("*.json"))) == 1

    def no_model(*args, **kwargs):
        raise AssertionError("the encoder was loaded again")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_model)
    again = evaluator.embedding_zero_shot_comparison(TEXTS, [0, 1, 2, 3], [0, 1, 2, 3], LABELS, path, tok)
    assert again["zero_shot_accuracy"] == first["zero_shot_accuracy"]
    assert again["fine_tuned_accuracy"] == 1.0  # the submission's side is never cached
    other = evaluator._zero_shot_cache_file(TEXTS, LABELS[::-1], path)
    assert other != evaluator._zero_shot_cache_file(TEXTS, LABELS, path)
    (evaluator._zero_shot_cache_file(TEXTS, LABELS, path)).write_text('["not", "ints"]')  # a broken file
    monkeypatch.undo()
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    assert evaluator.cached_zero_shot_predictions(TEXTS, LABELS, path, tok) == \
        evaluator.embedding_zero_shot_predictions(TEXTS, LABELS, transformers.AutoModel.from_pretrained(path), tok)



def test_test_texts_are_batched_by_length_and_answered_in_their_own_order():
    from types import SimpleNamespace

    import torch
    from transformers import AutoTokenizer

    from autograder.grading import evaluator

    class RealTokenCount(torch.nn.Module):
        """Predicts (number of real tokens) % 4: an answer that padding must not change."""

        device = torch.device("cpu")

        def forward(self, input_ids, attention_mask, **kwargs):
            return SimpleNamespace(logits=torch.nn.functional.one_hot(attention_mask.sum(-1) % 4, 4).float())

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir("distilbert-base")))
    texts = [("word " * n) + t for n, t in zip([30, 1, 12, 3, 25, 6], TEXTS + TEXTS[:2])]
    one_by_one = [evaluator.predict_indices(RealTokenCount(), tok, [t], [0, 1, 2, 3])[0] for t in texts]
    assert len(set(one_by_one)) > 2
    assert evaluator.predict_indices(RealTokenCount(), tok, texts, [0, 1, 2, 3], batch_size=4) == one_by_one
    assert evaluator.predict_indices(RealTokenCount(), tok, texts, [3, 2, 1, 0], batch_size=2) == \
        [3 - k for k in one_by_one]
