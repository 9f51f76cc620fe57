"""The calibration's submissions: the reference and its harmless and broken variants, and the run plan.

Kept apart from the rule (:mod:`autograder.grading.calibration`) because it is a catalogue that grows
with every training choice the course meets (issue 22, item 4), while the rule that turns runs into
thresholds stays put. A variant is text edits to the reference's files and/or other notebook
parameters; ``scripts/calibrate_model_tier.py`` applies them to a copy and grades it as a submission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Variant:
    """A submission: the reference, with text edits to its files and/or other notebook parameters."""

    id: str
    correct: bool
    what: str
    params: dict = field(default_factory=dict)
    edits: tuple[tuple[str, str, str], ...] = ()  # (file, text, replacement), each text exactly once
    notebooks: tuple[str, ...] = ()  # ids it applies to; empty: every notebook
    # Broken, but caught by a hidden structural check (named here), and its model scores within the
    # seed spread of correct work: no threshold could fail it without failing correct work as often.
    # The table shows how it scores; the rule does not require it to fail.
    caught_by: str = ""
    # Correct code, but a choice the course fixes: the spec sets it or a hidden structural check (named here)
    # asks for the course's choice, so the structural tier does not accept it from a student. Shown, with its
    # estimated false-fail rate; the threshold is not held to it (issue 22, item 4).
    pinned_by: str = ""

    @property
    def must_fail(self) -> bool:
        return not self.correct and not self.caught_by

    @property
    def held(self) -> bool:
        """Correct work the threshold must pass: harmless and accepted by the structural tier."""
        return self.correct and not self.pinned_by


VARIANTS = (
    Variant("reference", True, "the reference solution"),
    Variant("pad8", True, "DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)", edits=((
        "stage3_train.py", "data_collator=DataCollatorWithPadding(tokenizer),",
        "data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),"),)),
    Variant("warmup", True, "20 warm-up steps", edits=((
        "stage3_train.py", "        seed=seed,\n", "        seed=seed,\n        warmup_steps=20,\n"),)),
    Variant("weight_decay", True, "weight decay 0.1 instead of 0.01", edits=((
        "stage3_train.py", "weight_decay: float = 0.01", "weight_decay: float = 0.1"),)),
    Variant("cosine", True, "cosine learning-rate schedule", edits=((
        "stage3_train.py", "        seed=seed,\n", '        seed=seed,\n        lr_scheduler_type="cosine",\n'),)),
    Variant("constant", True, "constant learning rate (no decay)", edits=((
        "stage3_train.py", "        seed=seed,\n", '        seed=seed,\n        lr_scheduler_type="constant",\n'),),
            pinned_by="stage 3's hidden check test_training_arguments asks for a learning rate that decays "
                      "(linear, the default, or cosine; the mutant 'train-constant-schedule' of "
                      "tests/test_mutants.py)"),
    Variant("warmup_ratio", True, "linear schedule with warm-up over the first 10% of the steps", edits=((
        "stage3_train.py", "        seed=seed,\n", "        seed=seed,\n        warmup_steps=0.1,\n"),)),
    Variant("label_smoothing", True, "label smoothing 0.1", edits=((
        "stage3_train.py", "        seed=seed,\n", "        seed=seed,\n        label_smoothing_factor=0.1,\n"),)),
    Variant("best_on_f1", True, "the best checkpoint chosen on validation macro-F1 instead of the loss", edits=((
        "stage3_train.py", 'metric_for_best_model="eval_loss",\n        greater_is_better=False,',
        'metric_for_best_model="f1",\n        greater_is_better=True,'),)),
    Variant("batch8", True, "batch size 8", params={"batch_size": 8},
            pinned_by="the course's batch_size parameter (course.toml [[notebooks]] parameters), which the grader "
                      "passes to the notebook; stage 3's hidden check test_training_arguments asks make_training_args "
                      "to pass it on (per_device_train_batch_size)"),
    Variant("batch32", True, "batch size 32", params={"batch_size": 32},
            pinned_by="the course's batch_size parameter (course.toml [[notebooks]] parameters), which the grader "
                      "passes to the notebook; stage 3's hidden check test_training_arguments asks make_training_args "
                      "to pass it on (per_device_train_batch_size)"),
    Variant("untrained_head", False, "one optimisation step: the head stays untrained", edits=((
        "stage3_train.py", "        num_train_epochs=epochs,\n",
        "        num_train_epochs=epochs,\n        max_steps=1,\n"),)),
    Variant("shuffled_labels", False, "labels shuffled within each split", edits=((
        "stage1_tokenize.py", '    tokenized.set_format("torch")\n',
        '    import random\n    tokenized = tokenized.map(lambda b: {"label": random.Random(0).sample(b["label"], '
        'len(b["label"]))}, batched=True, batch_size=None)\n    tokenized.set_format("torch")\n'),)),
    Variant("from_config", False, "encoder built with from_config (random weights)", edits=((
        "stage2_model.py",
        "    return AutoModelForSequenceClassification.from_pretrained(\n"
        "        model_name_or_path, num_labels=len(labels), id2label=id2label, label2id=label2id\n    )",
        "    from transformers import AutoConfig\n"
        "    config = AutoConfig.from_pretrained(model_name_or_path, num_labels=len(labels), id2label=id2label, "
        "label2id=label2id)\n    return AutoModelForSequenceClassification.from_config(config)"),)),
    Variant("lr0", False, "learning rate 0", params={"learning_rate": 0.0}),
    Variant("no_class_weights", False, "plain cross-entropy where the capstone asks for class weights", edits=((
        "stage5_emotion.py",
        "loss = weighted_cross_entropy(outputs.logits, labels, self.class_weights, label_smoothing=smoothing)",
        "loss = torch.nn.functional.cross_entropy(outputs.logits, labels)"),),
            notebooks=("emotion_model",),
            caught_by="stage 5's hidden check test_weighted_trainer_loss_uses_the_class_weights (the mutant "
                      "'emotion-trainer-ignores-weights' of tests/test_mutants.py)"),
    Variant("workshop_lr", False, "the workshop's learning rate 1e-5 in the course's 3 epochs",
            params={"learning_rate": 1e-5}),
)
"""The reference, the training choices a competent student could make (correct), and the classic mistakes.

The correct ones beyond the reference are the choices the structural tier accepts and a student may
well make (issue 22): the schedule (cosine, constant, linear with warm-up as a ratio: transformers 5
takes it as ``warmup_steps`` under 1, it has no ``warmup_ratio``), label smoothing (the emotion
notebook's WeightedTrainer passes ``label_smoothing_factor`` on to its weighted loss), the batch size
(8 and 32, as the notebooks' ``batch_size`` parameter), padding to a multiple of 8 and the weight decay.
``load_best_model_at_end`` cannot be varied "either way": the reference already loads the best
checkpoint (evaluating and saving every epoch, as that option requires), and leaving it out fails stage
3's hidden check ``test_training_arguments``, which asks for it, so it is no harmless choice; what a student
may choose is the metric that picks the best checkpoint, hence ``best_on_f1``.
Each text edit must hold exactly once in the current solutions (``tests/test_calibration_variants.py``).
"""


def variant(variant_id: str) -> Variant:
    return next(v for v in VARIANTS if v.id == variant_id)


def apply(v: Variant, folder: Path) -> str:
    """Edit the submission copy in ``folder``; '' on success, else why the variant does not apply."""
    for name, old, new in v.edits:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            return f"{name} no longer holds the text this variant edits"
        path.write_text(text.replace(old, new), encoding="utf-8")
    return ""


def plan(notebooks: list[str], variants: list[Variant], *, seeds: int, broken_seeds: int, spread: bool = False,
         done: set[tuple[str, str, int]] = frozenset()) -> list[tuple[int, str, Variant]]:
    """The runs still to do, as (seed, notebook id, variant).

    Correct runs first, then broken ones, each in seed-major order: a calibration stopped at any point
    holds every variant at nearly the same number of seeds, and a rerun resumes where it stopped.
    ``spread``: seed s runs one correct variant (the s-th of all correct variants, cyclically) instead
    of all of them, so N seeds cost N correct runs per notebook; a harmless variant is one more random
    draw among many.
    """
    todo = []
    for correct in (True, False):
        for seed in range(seeds if correct else broken_seeds):
            for nb in notebooks:
                mine = [v for v in variants if v.correct == correct and (not v.notebooks or nb in v.notebooks)]
                if correct and spread:  # the turn is kept over all correct variants, so --variant only filters
                    every = [v for v in VARIANTS if v.correct and (not v.notebooks or nb in v.notebooks)]
                    mine = [v for v in mine if v.id == every[seed % len(every)].id]
                todo += [(seed, nb, v) for v in mine if (nb, v.id, seed) not in done]
    return todo
