import pytest
import torch

from metakit.fewshot import FewShotClassifier


def test_fewshot_support_checks():
    assert FewShotClassifier.check_support(torch.tensor([0, 1, 1, 2])) == 3
    with pytest.raises(ValueError, match="every label"):
        FewShotClassifier.check_support(torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="non-empty"):
        FewShotClassifier.check_support(torch.tensor([], dtype=torch.long))
    model = FewShotClassifier(torch.nn.Flatten())
    with pytest.raises(RuntimeError, match="fit_support"):
        model._check_fitted()
