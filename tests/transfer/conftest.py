import pytest
import torch

from metakit.gradient.maml import MAML
from metakit.metric.protonet import PrototypicalNetwork
from metakit.models import Conv4

from .test_widgets import tiny_dataset


@pytest.fixture(scope="module")
def setup():
    """Untrained backbones, an 8-class dataset and two reference methods, for the explorer's tests."""
    torch.manual_seed(0)
    backbones = {"baseline": Conv4(hidden=4).eval(), "baselinepp": Conv4(hidden=4).eval()}
    references = {"proto": PrototypicalNetwork(Conv4(hidden=4)).eval(),
                  "maml": MAML(Conv4(hidden=4, out_features=5, track_running_stats=False), inner_lr=0.1)}
    return backbones, {"tiny": tiny_dataset()}, references
