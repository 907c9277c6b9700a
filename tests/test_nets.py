"""The math: each net's forward, MyReLU's gradient, and the hand-derived gradients."""

import pytest
import torch
from torch import nn

from primer.tutorial.nets import FeedForwardNet, HandGradientNet, MyReLU, TwoLayerNet, sequential_net

N, D_IN, H, D_OUT = 8, 12, 6, 3


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def test_my_relu_passes_gradcheck_in_float64():
    x = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(MyReLU.apply, (x,))


def test_my_relu_forward_and_gradient_match_clamp():
    x = torch.randn(N, H, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    upstream = torch.randn(N, H)
    MyReLU.apply(x).backward(upstream)
    x_ref.clamp(min=0).backward(upstream)
    assert torch.equal(MyReLU.apply(x), x.clamp(min=0))
    assert torch.equal(x.grad, x_ref.grad)
    assert torch.equal(x.grad == 0, x.detach() < 0)  # only negative inputs block the gradient


def test_sequential_net_is_linear_relu_linear():
    net = sequential_net(D_IN, H, D_OUT)
    assert [type(layer) for layer in net] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (net[0].in_features, net[0].out_features, net[2].out_features) == (D_IN, H, D_OUT)


def test_sequential_net_computes_what_two_layer_net_computes():
    torch.manual_seed(1)
    seq = sequential_net(D_IN, H, D_OUT)
    torch.manual_seed(1)
    two = TwoLayerNet(D_IN, H, D_OUT)
    x = torch.randn(N, D_IN)
    assert torch.equal(seq(x), two(x))


@pytest.mark.parametrize(
    "make_net",
    [
        lambda: TwoLayerNet(D_IN, H, D_OUT),
        lambda: TwoLayerNet(D_IN, H, D_OUT, relu="custom"),
        lambda: sequential_net(D_IN, H, D_OUT),
        lambda: FeedForwardNet(D_IN, H, D_OUT),
        lambda: FeedForwardNet(D_IN, H, D_OUT, relu="custom"),
        lambda: HandGradientNet(D_IN, H, D_OUT),
    ],
    ids=["two_layer", "custom_relu", "sequential", "autograd", "raw_custom_relu", "manual"],
)
def test_every_net_maps_a_batch_to_outputs(make_net):
    assert make_net()(torch.randn(N, D_IN)).shape == (N, D_OUT)


@pytest.mark.parametrize("net", [TwoLayerNet, FeedForwardNet])
def test_a_net_rejects_an_unknown_relu(net):
    with pytest.raises(ValueError, match="relu must be"):
        net(D_IN, H, D_OUT, relu="gelu")


def test_raw_weight_net_with_my_relu_computes_what_it_computes_with_clamp():
    """The tutorial's "Applying Custom Function": MyReLU.apply(x.mm(w1)).mm(w2), same output and gradients."""
    torch.manual_seed(2)
    clamp = FeedForwardNet(D_IN, H, D_OUT)
    custom = FeedForwardNet(D_IN, H, D_OUT, relu="custom")
    custom.load_state_dict(clamp.state_dict())
    x = torch.randn(N, D_IN)
    for net in (clamp, custom):
        net(x).pow(2).sum().backward()
    assert torch.equal(clamp(x), custom(x))
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(clamp.parameters(), custom.parameters()))


def test_raw_weight_net_has_two_weight_matrices_and_no_bias():
    net = FeedForwardNet(D_IN, H, D_OUT)
    assert {name: tuple(p.shape) for name, p in net.named_parameters()} == {"w1": (D_IN, H), "w2": (H, D_OUT)}
    x = torch.randn(N, D_IN)
    assert torch.equal(net(x), x.mm(net.w1).clamp(min=0).mm(net.w2))


def test_hand_gradients_equal_autograd_in_float64():
    net = HandGradientNet(D_IN, H, D_OUT).double()
    x, y = torch.randn(N, D_IN, dtype=torch.float64), torch.randn(N, D_OUT, dtype=torch.float64)
    y_pred, loss, (grad_w1, grad_w2) = net.loss_and_gradients(x, y)

    autograd_loss = nn.MSELoss(reduction="sum")(net(x), y)
    autograd_loss.backward()
    assert torch.allclose(loss, autograd_loss, rtol=1e-12, atol=0)
    assert torch.allclose(y_pred, net(x), rtol=1e-12, atol=0)
    assert torch.allclose(grad_w1, net.w1.grad, rtol=1e-10, atol=1e-12)
    assert torch.allclose(grad_w2, net.w2.grad, rtol=1e-10, atol=1e-12)


def test_hand_gradients_do_not_touch_autograd():
    net = HandGradientNet(D_IN, H, D_OUT)
    _, loss, grads = net.loss_and_gradients(torch.randn(N, D_IN), torch.randn(N, D_OUT))
    assert not loss.requires_grad and not any(g.requires_grad for g in grads)
    assert net.w1.grad is None
