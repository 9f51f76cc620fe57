"""Stage 3: train with the Hugging Face ``Trainer``.

``TrainingArguments`` says how to train (epochs, learning rate, when to evaluate, which
checkpoint to keep); ``Trainer`` runs the loop. Evaluation uses the validation split only: the
test split stays unseen until the very end, or its score stops meaning anything.
"""

from __future__ import annotations

from collections.abc import Callable

from datasets import DatasetDict
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments


def make_training_args(output_dir: str, *, seed: int = 42, learning_rate: float = 5e-5, epochs: float = 3,
                       batch_size: int = 16, weight_decay: float = 0.01) -> TrainingArguments:
    """Training arguments for fine-tuning.

    Evaluate and save once per epoch (``eval_strategy``/``save_strategy="epoch"``), keep the
    best checkpoint on the validation loss (``load_best_model_at_end=True``), pass ``seed``,
    ``learning_rate``, ``weight_decay``, ``num_train_epochs`` and the batch size for training and
    evaluation, report to no external service (``report_to="none"``), and group examples of
    similar length into batches (``train_sampling_strategy="group_by_length"``) so that dynamic
    padding wastes little. Keep at most one checkpoint on disk (``save_total_limit=1``) and log the
    training loss every 10 steps (``logging_steps=10``): that is your learning curve. Keep the default
    learning-rate schedule (``lr_scheduler_type="linear"``): the rate falls to 0 by the last step.
    """
    ### BEGIN SOLUTION
    return TrainingArguments(
        output_dir=output_dir,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        save_total_limit=1,
        seed=seed,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        train_sampling_strategy="group_by_length",
        report_to="none",
        logging_strategy="steps",
        logging_steps=10,
        disable_tqdm=True,
    )
    ### END SOLUTION


def build_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tokenized: DatasetDict,
                  args: TrainingArguments, compute_metrics: Callable | None = None) -> Trainer:
    """A ``Trainer`` that trains on ``tokenized["train"]`` and evaluates on ``tokenized["validation"]``.

    Pad each batch to its own longest example with ``DataCollatorWithPadding(tokenizer)`` and
    pass the tokenizer as ``processing_class`` (it is saved with the model). Never give the
    test split to the Trainer.
    """
    ### BEGIN SOLUTION
    return Trainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    ### END SOLUTION
