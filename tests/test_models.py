import pytest
import torch
from torch import nn

from metakit.models import Conv4


@pytest.mark.parametrize("hidden", [64, 8])
def test_embedding_is_flat_with_hidden_features(hidden):
    z = Conv4(hidden=hidden)(torch.rand(3, 1, 28, 28))
    assert z.shape == (3, hidden)


def test_linear_head_gives_out_features():
    net = Conv4(hidden=8, out_features=5)
    assert net(torch.rand(4, 1, 28, 28)).shape == (4, 5)
    assert isinstance(net.head, nn.Linear) and Conv4(hidden=8).head is None


def test_four_blocks_of_conv_batchnorm_relu_pool():
    kinds = [type(m) for m in Conv4(hidden=8).modules()]
    for layer in (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d):
        assert kinds.count(layer) == 4


@pytest.mark.parametrize("track", [True, False])
def test_track_running_stats_reaches_batchnorm(track):
    norms = [m for m in Conv4(hidden=8, track_running_stats=track).modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bn.track_running_stats is track for bn in norms)
    assert all((bn.running_mean is not None) is track for bn in norms)


def test_without_running_stats_eval_uses_batch_statistics():
    # what MAML needs: the same outputs in train and eval mode, and no state carried between calls
    torch.manual_seed(0)
    net, x = Conv4(hidden=8, track_running_stats=False), torch.rand(6, 1, 28, 28)
    train_out = net(x)
    torch.testing.assert_close(net.eval()(x), train_out)


def test_gradients_reach_every_parameter():
    net = Conv4(hidden=8, out_features=3)
    net(torch.rand(4, 1, 28, 28)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
