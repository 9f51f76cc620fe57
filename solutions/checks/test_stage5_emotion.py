"""Public checks for stage 5 (emotion capstone): the hidden grader's checks of the same names, on other inputs."""

import stage5_emotion as stage
import torch
import torch.nn.functional as F
from datasets import ClassLabel, Dataset, Features, Value
from sklearn.metrics import precision_recall_fscore_support
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

NAMES = ["sadness", "joy", "love", "anger", "fear", "surprise"]
COUNTS = [40, 25, 20, 8, 5, 2]  # N = 100, K = 6: w_c = 100 / (6 * n_c)


def _rounded(weights: torch.Tensor) -> list[float]:
    """Weights as a message shows them: 3 decimals, so the fix words are not lost behind float32 digits."""
    return [round(float(w), 3) for w in weights.flatten()[:12]]


def test_label_counts_per_name_in_label_order():
    features = Features({"text": Value("string"), "label": ClassLabel(names=NAMES)})
    ds = Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": [1, 1, 0, 4]}, features=features)
    out = stage.label_counts(ds)
    want = {"sadness": 1, "joy": 2, "love": 0, "anger": 0, "fear": 1, "surprise": 0}
    assert isinstance(out, dict) and list(out) == NAMES, \
        (f"count every label name, in the ClassLabel's order {NAMES} (labels that never occur included, with "
         f"count 0); label_counts returned the keys {list(out)[:8] if isinstance(out, dict) else type(out).__name__}")
    assert out == want, f"label_counts returned {out}, expected {want}"
    assert all(type(v) is int for v in out.values()), "the counts should be plain python ints"


def test_class_weights_are_balanced_inverse_frequency():
    out = stage.class_weights(COUNTS)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32, f"expected a float32 tensor, got {out!r}"
    want = torch.tensor([100 / (6 * n) for n in COUNTS])
    assert bool(torch.all(out[1:] > out[:-1])), \
        ("rarer classes (smaller counts) should get larger weights: weight by the inverse of the frequency. "
         f"class_weights({COUNTS}) returned {_rounded(out)}")
    assert torch.allclose(out, want, rtol=1e-5, atol=0), \
        (f"use w_c = N / (K * n_c), here with N=100 texts and K=6 classes: class_weights({COUNTS}) returned "
         f"{_rounded(out)}, expected {_rounded(want)}")
    try:
        stage.class_weights([3, 0, 2])
    except ValueError as exc:
        assert str(exc).strip(), \
            "class_weights([3, 0, 2]) raised ValueError without a message: say which class has no examples"
    else:
        raise AssertionError("class_weights([3, 0, 2]) should raise ValueError: a class with 0 examples has no "
                             "inverse-frequency weight")


def test_weighted_cross_entropy_matches_torch():
    logits = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 1, 5, 2, 0, 3, 4])
    weights = torch.tensor([100 / (6 * n) for n in COUNTS])
    out = stage.weighted_cross_entropy(logits, labels, weights)
    want, plain = F.cross_entropy(logits, labels, weight=weights), F.cross_entropy(logits, labels)
    assert isinstance(out, torch.Tensor) and out.dim() == 0, f"expected one number (a 0-d tensor), got {out!r}"
    assert abs(float(out) - float(plain)) > 1e-4, \
        ("pass weight=weights to torch.nn.functional.cross_entropy: weighted_cross_entropy returned "
         f"{float(out):.6f}, the unweighted cross-entropy; expected {float(want):.6f}")
    assert abs(float(out) - float(want)) < 1e-6, \
        (f"weighted_cross_entropy returned {float(out):.6f}, expected "
         f"F.cross_entropy(logits, labels, weight=weights) = {float(want):.6f}")


def test_weighted_trainer_loss_uses_the_class_weights(tmp_path, tiny_base_path):
    assert isinstance(stage.WeightedTrainer, type) and issubclass(stage.WeightedTrainer, Trainer), \
        "stage5_emotion.py should define `class WeightedTrainer(Trainer)`"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base_path, num_labels=6).eval()
    with torch.no_grad():  # a spread-out head, so that weighted and unweighted losses differ clearly
        model.classifier.weight.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(3))
    weights = torch.tensor([100 / (6 * n) for n in COUNTS])
    trainer = stage.WeightedTrainer(model=model, args=TrainingArguments(str(tmp_path), report_to="none", use_cpu=True),
                                    class_weights=weights)
    batch = dict(AutoTokenizer.from_pretrained(tiny_base_path)(["so alone", "what a surprise", "furious", "lovely"],
                                                                padding=True, return_tensors="pt"))
    labels = torch.tensor([0, 5, 3, 2])
    with torch.no_grad():
        logits = model(**batch).logits
        loss = trainer.compute_loss(model, {**batch, "labels": labels.clone()}, num_items_in_batch=torch.tensor(4))
    want, plain = F.cross_entropy(logits, labels, weight=weights), F.cross_entropy(logits, labels)
    assert isinstance(loss, torch.Tensor) and loss.numel() == 1, \
        f"compute_loss returned {loss!r}, expected the batch's loss"
    assert abs(float(loss) - float(plain)) > 1e-5, \
        ("compute the loss with weighted_cross_entropy(outputs.logits, labels, self.class_weights): compute_loss "
         f"returned {float(loss):.6f}, the unweighted cross-entropy; expected {float(want):.6f}")
    assert abs(float(loss) - float(want)) < 1e-5, f"compute_loss returned {float(loss):.6f}, expected {float(want):.6f}"
    smoothing = TrainingArguments(str(tmp_path), report_to="none", use_cpu=True, label_smoothing_factor=0.1)
    trainer = stage.WeightedTrainer(model=model, args=smoothing, class_weights=weights)
    with torch.no_grad():
        loss = trainer.compute_loss(model, {**batch, "labels": labels.clone()}, num_items_in_batch=torch.tensor(4))
    smoothed = F.cross_entropy(logits, labels, weight=weights, label_smoothing=0.1)
    assert abs(float(loss) - float(want)) > 1e-5, \
        ("pass the training arguments' smoothing on: weighted_cross_entropy(outputs.logits, labels, "
         "self.class_weights, label_smoothing=self.args.label_smoothing_factor). With TrainingArguments("
         f"label_smoothing_factor=0.1), compute_loss returned {float(loss):.6f}, the loss without smoothing; "
         f"expected {float(smoothed):.6f}")
    assert abs(float(loss) - float(smoothed)) < 1e-5, \
        (f"with TrainingArguments(label_smoothing_factor=0.1), compute_loss returned {float(loss):.6f}, expected "
         f"F.cross_entropy(logits, labels, weight=weights, label_smoothing=0.1) = {float(smoothed):.6f}")


def test_per_class_report_matches_sklearn():
    y_true, y_pred = [0, 0, 1, 1, 1, 3, 4, 4], [0, 1, 1, 1, 0, 3, 4, 1]
    fix = "pass labels=list(range(K)) so that a class missing from both lists still gets a row"
    try:
        out = stage.per_class_report(y_true, y_pred, NAMES)
    except IndexError as exc:  # sklearn returned fewer rows than there are labels
        raise AssertionError(f"{fix} (class 2 and 5 never occur here). per_class_report raised IndexError: "
                             f"{str(exc)[:160]}") from None
    assert isinstance(out, dict) and list(out) == NAMES, \
        (f"{fix}: every label name in order {NAMES}; per_class_report returned the keys "
         f"{list(out)[:8] if isinstance(out, dict) else type(out).__name__}")
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(range(6)), zero_division=0)
    for i, name in enumerate(NAMES):
        want = {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        got = {key: out[name].get(key) for key in want}
        assert all(isinstance(got[k], (int, float)) and abs(got[k] - want[k]) < 1e-9 for k in want), \
            f"out[{name!r}] is {got}, expected {want}"


def test_most_confused_ranks_off_diagonal_cells():
    out = stage.most_confused([0, 0, 0, 0, 1, 1, 2, 2, 2], [0, 0, 2, 1, 1, 0, 0, 0, 1], ["a", "b", "c"])
    got = [tuple(x) for x in out]
    assert all(x[0] != x[1] for x in got), \
        ("keep only the off-diagonal cells of the confusion matrix: most_confused returned correct predictions "
         f"(true == predicted) too: {got[:5]}")
    want = [("c", "a", 2), ("a", "b", 1), ("a", "c", 1)]
    assert got == want, ("rows of the confusion matrix are the true labels, columns the predictions; sort by count "
                         "(largest first), then by true index, then predicted index: most_confused returned "
                         f"{got[:5]}, expected {want}")
