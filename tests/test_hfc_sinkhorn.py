"""Sinkhorn-Knopp: marginals of both constraints met to 1e-3, finite at eps = 0.003 with K = 4000."""

import torch
import torch.nn.functional as F
from toygen import single_thread  # noqa: F401

from hfc.sinkhorn import assignment_histogram, sinkhorn


def _scores(b, k, d=16, seed=0):
    """Cosine scores of unit pixel codes against unit prototypes, [2, b, k] (as in SwAV)."""
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(2, b, d, generator=g), dim=-1)
    c = F.normalize(torch.randn(k, d, generator=g), dim=-1)
    return z @ c.t()


def test_equipartition_marginals():
    scores = _scores(300, 40)
    q = sinkhorn(scores, eps=0.05, n_iters=200)
    assert torch.allclose(q.sum(-1), torch.ones(2, 300), atol=1e-5)  # each pixel: a distribution
    per_prototype = q.mean(-2)  # sum_b (1/B) q_bk must be 1/K
    assert ((per_prototype * 40 - 1).abs() < 1e-3).all()


def test_pixel_distribution_marginals():
    scores = _scores(300, 40, seed=1)
    r = assignment_histogram(scores)
    assert torch.allclose(r.sum(-1), torch.ones(2)) and (r > 0).all()
    q = sinkhorn(scores, eps=0.05, n_iters=200, prototype_marginal=r)
    assert torch.allclose(q.sum(-1), torch.ones(2, 300), atol=1e-5)
    assert ((q.mean(-2) / r - 1).abs() < 1e-3).all()


def test_weighted_pixels_marginals():
    scores = _scores(200, 30, seed=2)
    c = torch.rand(2, 200, generator=torch.Generator().manual_seed(3)) + 0.1
    c = c / c.sum(-1, keepdim=True)
    q = sinkhorn(scores, eps=0.05, n_iters=200, pixel_marginal=c)
    assert torch.allclose(q.sum(-1), torch.ones(2, 200), atol=1e-5)
    assert (((c.unsqueeze(-1) * q).sum(-2) * 30 - 1).abs() < 1e-3).all()


def test_stable_at_small_epsilon_and_many_prototypes():
    scores = _scores(256, 4000, d=32, seed=4)
    assert (scores / 0.003).exp().isinf().any()  # the naive kernel would overflow float32
    q = sinkhorn(scores, eps=0.003, n_iters=10)
    assert torch.isfinite(q).all()
    assert torch.allclose(q.sum(-1), torch.ones(2, 256), atol=1e-4)
    q = sinkhorn(scores, eps=0.003, n_iters=10, prototype_marginal=assignment_histogram(scores))
    assert torch.isfinite(q).all()


def test_matches_float64_reference():
    """Same result as the textbook multiplicative iteration (swav's) in float64 where that is safe."""
    scores = _scores(50, 12, seed=5)[0]
    q = sinkhorn(scores, eps=0.1, n_iters=3)
    ref = torch.exp(scores.double() / 0.1).t()  # [K, B]
    for _ in range(3):
        ref /= ref.sum(1, keepdim=True) * 12
        ref /= ref.sum(0, keepdim=True) * 50
    assert torch.allclose(q.double(), (ref * 50).t(), atol=1e-5)


def test_assignment_histogram_counts():
    scores = torch.tensor([[[0.9, 0.1, 0.0], [0.8, 0.0, 0.1], [0.0, 0.0, 1.0]]])
    assert torch.allclose(assignment_histogram(scores, smoothing=0.0), torch.tensor([[2 / 3, 0.0, 1 / 3]]))
    assert torch.allclose(assignment_histogram(scores), torch.tensor([[3 / 6, 1 / 6, 2 / 6]]))
