"""GPU awareness (issue 12, item 2): mixed precision where CUDA is, fp32 on CPU; the evaluator scores
on the GPU when there is one; model-tier tasks ask Dask for a GPU only where a worker offers one.
CUDA is mocked: these run on CPU machines."""

from __future__ import annotations

import pytest

from autograder.batch import engine, task
from autograder.batch.validate import expected_stages, failed_result
from autograder.course.models import tiny_model_dir, training_precision

# torch and the evaluator are imported in the tests that use them: collecting the suite costs none of it.


@pytest.fixture
def cuda(monkeypatch):
    """A machine with CUDA as far as the precision and device choices can tell."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return monkeypatch


def test_cpu_trains_in_fp32_whatever_is_asked():
    import torch

    from autograder.grading import evaluator

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for precision in ("auto", "bf16", "fp16", "fp32"):
        assert training_precision(precision) == {"bf16": False, "fp16": False}
    assert evaluator.evaluation_device() == torch.device("cpu")


@pytest.mark.parametrize("bf16_ok, asked, flags", [
    (True, "auto", {"bf16": True, "fp16": False}), (False, "auto", {"bf16": False, "fp16": True}),
    (True, "fp16", {"bf16": False, "fp16": True}), (True, "fp32", {"bf16": False, "fp16": False})])
def test_auto_is_bf16_where_supported_else_fp16(cuda, bf16_ok, asked, flags):
    import torch

    from autograder.grading import evaluator

    cuda.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    assert training_precision(asked) == flags
    assert evaluator.evaluation_device() == torch.device("cuda")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="auto, bf16, fp16, fp32"):
        training_precision("fp8")


def test_the_evaluator_moves_the_model_and_the_batches_to_its_device(monkeypatch):
    import torch
    from transformers import AutoTokenizer

    from autograder.grading import evaluator

    moved = []
    monkeypatch.setattr(evaluator, "evaluation_device", lambda: moved.append(1) or torch.device("cpu"))

    folder = tiny_model_dir("distilbert-classifier")
    model, mapping = evaluator.load_saved_model(folder, ["negative", "positive"])
    assert moved and model.device.type == "cpu" and mapping == [0, 1]
    tok = AutoTokenizer.from_pretrained(folder)
    calls = []
    forward = model.forward

    def spy(**batch):
        calls.append({v.device.type for v in batch.values()})
        return forward(**batch)

    monkeypatch.setattr(model, "forward", spy)
    assert len(evaluator.predict_indices(model, tok, ["good", "bad film"], mapping)) == 2
    assert calls == [{"cpu"}]


# ----------------------------------------------------------------------------- Dask resources
class FakeClient:
    def __init__(self, workers: dict):
        self.workers = workers

    def scheduler_info(self, n_workers: int = -1) -> dict:
        return {"workers": self.workers}


def test_cluster_shape_sees_gpus_and_slots_per_host():
    gpu, slots = engine.cluster_shape(FakeClient({
        "tcp://10.0.0.1:1": {"host": "10.0.0.1", "nthreads": 1, "resources": {"GPU": 1}},
        "tcp://10.0.0.1:2": {"host": "10.0.0.1", "nthreads": 1, "resources": {}},
        "tcp://10.0.0.2:1": {"host": "10.0.0.2", "nthreads": 4}}))
    assert gpu and slots == {"10.0.0.1": 2, "10.0.0.2": 4}
    assert engine.cluster_shape(FakeClient({"a": {"host": "h", "nthreads": 2, "resources": {}}})) == (False, {"h": 2})


@pytest.mark.parametrize("gpus, tier, wanted", [(1, "model", {"GPU": 1}), (1, "structural", None),
                                                 (0, "model", None)])
def test_model_tier_tasks_ask_for_a_gpu_only_where_one_exists(monkeypatch, gpus, tier, wanted):
    from distributed import Client, LocalCluster

    expected = expected_stages("structural", ["tokenize"])
    monkeypatch.setattr(task, "grade_task", lambda t: {"result": failed_result(t["id"], "x", "", expected).to_dict()})
    asked = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                      resources={"GPU": gpus} if gpus else None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        submit = client.submit
        monkeypatch.setattr(client, "submit", lambda *a, **k: asked.append(k.get("resources")) or submit(*a, **k))
        got = list(engine.stream(client, [("alice", {"id": "alice"}, [])], tier=tier, expected=expected,
                                 total=1, progress=False))
    assert [sid for sid, _, _ in got] == ["alice"] and asked == [wanted]
