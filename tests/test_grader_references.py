"""References that graders carry for speed must equal the libraries they stand in for."""


def test_grader_embedding_reference_is_sentence_transformers():
    """The graders embed with their own copy of the recipe (fast); it must equal sentence-transformers'."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from autograder.course.models import packaged_encoder_path
    from autograder.grading.graders.test_stage6_zero_shot import SENTENCES, reference_embeddings

    path = packaged_encoder_path()
    texts = [*SENTENCES, "This text is about music.", "a very long review " * 120]
    ours = reference_embeddings(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), texts)
    theirs = SentenceTransformer(str(path), device="cpu").encode(texts, normalize_embeddings=True,
                                                                  convert_to_tensor=True)
    assert torch.allclose(ours, theirs.cpu().float(), atol=1e-5), (ours - theirs.cpu()).abs().max()
