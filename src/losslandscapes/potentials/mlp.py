"""Loss potentials: batched value and gradient, Hessian, Hessian-vector product, predictions.

A potential has ``P`` (free parameters), ``device``, ``value_and_grad(x[B, P]) -> (f[B], g[B, P])``,
``hessian(x[P]) -> [P, P]`` and ``hvp(x[P], v[P]) -> [P]``; optimisers never know what they minimise.
Everything is float64.
"""

from __future__ import annotations

import numpy as np
import torch

from losslandscapes.potentials.layout import Layout
from losslandscapes.workers import serial_blas

DTYPE = torch.float64
BACKENDS = ("auto", "numba", "torch")
METRIC_RIDGE = 1.0  # ridge of the input metric, relative to the mean input second moment


def input_metric(X: np.ndarray, ridge: float = METRIC_RIDGE) -> np.ndarray:
    """[I, I] inverse of ``C / c + ridge * 1`` for inputs ``X[N, I]``: ``C = X^T X / N`` their second
    moments, ``c`` its mean diagonal over the inputs that are not zero in every sample; those that
    are (MNIST: 180 pixels) decouple, their rows are exactly ``1 / ridge``. The first-layer block of a
    loss's Hessian is about (hidden-unit curvature) x C: this metric is L-BFGS's initial inverse
    Hessian for first-layer weights (docs/methods.md §6; on MNIST's raw pixels 45 % fewer
    iterations per minimum, measured)."""
    serial_blas()  # the same bits on every machine
    X = np.asarray(X, np.float64)
    C = X.T @ X / max(len(X), 1)
    used = np.flatnonzero(np.diagonal(C) > 0)  # an input that is always zero: exactly 1 / ridge
    c = float(np.diagonal(C)[used].mean()) if len(used) else 1.0
    out = np.eye(len(C)) / ridge
    inv = np.linalg.inv(C[np.ix_(used, used)] / c + ridge * np.eye(len(used)))
    out[np.ix_(used, used)] = 0.5 * (inv + inv.T)
    return out


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda requested but no CUDA device is available")
    return torch.device(device)


class Potential:
    """What every search uses of a potential: ``P`` parameters on ``device``, ``value`` and
    ``value_and_grad`` of rows [B, P], and at one point the ``hessian`` and ``hvp`` (here by
    automatic differentiation from ``value``). Two optional capabilities, None where absent:
    ``kernel``, compiled CPU kernels behind the potential (``kernels.mlp.MLPKernel``: rows then
    run as whole tasks, with a closed-form Hessian), and ``precondition``, an L-BFGS metric
    [B, P] -> [B, P] (``optimize.lbfgs``, step 2)."""

    P: int
    device: torch.device
    kernel = None
    precondition = None

    def value(self, x: torch.Tensor) -> torch.Tensor:  # [B, P] -> [B]
        raise NotImplementedError

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            f = self.value(x)
            (g,) = torch.autograd.grad(f.sum(), x)
        return f.detach(), g

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """Exact Hessian [P, P] at one point ``x[P]``."""
        h = torch.func.hessian(lambda q: self.value(q[None])[0])(x.detach())
        return 0.5 * (h + h.T)

    def hvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Hessian-vector product [P] at ``x[P]``."""
        gradf = torch.func.grad(lambda q: self.value(q[None])[0])
        return torch.func.jvp(gradf, (x.detach(),), (v,))[1]


class MLPLoss(Potential):
    """Mean cross-entropy of a tanh MLP plus ``lam * sum(w^2)`` (docs/methods.md §1).

    ``network``: layer sizes (inputs, hidden..., outputs), with ``free`` boolean over the full
    parameter layout or None, or a ``layout.Layout``; ``X[N, I]``, ``y[N]`` int. ``backend``:
    ``numba`` (compiled CPU kernels, ``kernels.mlp.MLPKernel``), ``torch`` (CUDA, and the
    reference), or ``auto`` (numba on CPU).
    """

    def __init__(self, network, X, y, lam: float, free=None, regularise_biases=True, device="cpu", backend="auto"):
        self.layout = network if isinstance(network, Layout) else Layout(network, free)
        self.sizes = self.layout.sizes
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.X = torch.as_tensor(np.array(X), dtype=DTYPE, device=self.device)
        self.y = torch.as_tensor(np.array(y), dtype=torch.int64, device=self.device)
        if self.X.shape[1] != self.sizes[0]:
            raise ValueError(f"data have {self.X.shape[1]} features but the network has {self.sizes[0]} inputs")
        self.lam = float(lam)
        self.free, self.P, self.P_full = self.layout.free, self.layout.P, self.layout.P_full
        self._select = None if self.free.all() else torch.eye(self.P_full, dtype=DTYPE, device=self.device)[self.free]
        reg = np.where(self.layout.bias_mask(), 1.0 if regularise_biases else 0.0, 1.0)[self.free]
        self._reg = torch.as_tensor(reg, dtype=DTYPE, device=self.device)
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        if backend == "numba" and self.device.type != "cpu":
            raise ValueError(f"backend numba runs on the CPU, but the device is {self.device}")
        metric = input_metric(np.array(X))
        self._metric = torch.as_tensor(metric, dtype=DTYPE, device=self.device)
        self.kernel = None
        if backend == "numba" or (backend == "auto" and self.device.type == "cpu"):
            from losslandscapes.potentials.kernels.mlp import MLPKernel

            self.kernel = MLPKernel(self.layout, np.array(X), np.array(y), self.lam, reg, metric)

    @property
    def backend(self) -> str:
        return "torch" if self.kernel is None else "numba"

    def full(self, x: torch.Tensor) -> torch.Tensor:
        """Full-layout parameters [B, P_full] (frozen weights 0) from free ones [B, P]."""
        return x if self._select is None else x @ self._select

    def to_free(self, w: np.ndarray) -> np.ndarray:
        return self.layout.to_free(w)

    def precondition(self, v: torch.Tensor) -> torch.Tensor:
        """``v[B, P]`` with its first-layer weights ([hidden, inputs] rows) times ``input_metric``:
        the L-BFGS metric (``optimize.lbfgs``, step 2); ``kernels.lbfgs.precondition_row`` on the CPU."""
        w = self.full(v)
        I, H = self.sizes[:2]
        w = torch.cat([(w[:, : H * I].reshape(-1, H, I) @ self._metric).reshape(-1, H * I), w[:, H * I:]], 1)
        return w if self._select is None else w @ self._select.T

    def to_full(self, x: np.ndarray) -> np.ndarray:
        return self.layout.to_full(x)

    def logits(self, x: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """Output activations [B, N, O] of parameter vectors ``x[B, P]`` on inputs ``X[N, I]``."""
        X = self.X if X is None else X
        h = None
        n_layers = self.layout.n_layers
        for layer, (W, b) in enumerate(self.layout.layers(self.full(x))):
            z = torch.einsum("ni,boi->bno", X, W) if h is None else torch.bmm(h, W.transpose(1, 2))
            z = z + b[:, None, :]
            h = torch.tanh(z) if layer < n_layers - 1 else z
        return h

    def cross_entropy(self, x: torch.Tensor, X=None, y=None) -> torch.Tensor:
        """Mean cross-entropy [B] (no regularisation) on (X, y), the training data by default."""
        z = self.logits(x, X)
        y = self.y if y is None else y
        picked = z.gather(2, y.expand(z.shape[0], -1)[:, :, None])[:, :, 0]
        return (torch.logsumexp(z, dim=2) - picked).mean(1)

    def regulariser(self, x: torch.Tensor) -> torch.Tensor:
        return self.lam * (x * x * self._reg).sum(1)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(x) + self.regulariser(x)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss [B] and its analytic gradient [B, P]."""
        if self.kernel is None:
            return self.torch_value_and_grad(x)
        f, g = self.kernel.value_grad(x.detach().numpy())
        return torch.from_numpy(f), torch.from_numpy(g)

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """Exact Hessian [P, P] at ``x[P]``."""
        if self.kernel is None:
            return self.torch_hessian(x)
        return torch.from_numpy(self.kernel.hessian(x.detach().numpy()))

    def hvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Hessian-vector product [P] at ``x[P]``."""
        if self.kernel is None:
            return super().hvp(x, v)
        return torch.from_numpy(self.kernel.hvp(x.detach().numpy(), v.detach().numpy()[None])[0])

    def torch_value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss [B] and its analytic gradient [B, P] in torch (hand-written backpropagation)."""
        w = self.full(x)
        B, N = w.shape[0], self.X.shape[0]
        acts, Ws = [self.X], []
        n_layers = self.layout.n_layers
        for layer, (W, b) in enumerate(self.layout.layers(w)):
            a = acts[-1]
            z = (torch.einsum("ni,boi->bno", a, W) if layer == 0 else torch.bmm(a, W.transpose(1, 2))) + b[:, None, :]
            Ws.append(W)
            acts.append(torch.tanh(z) if layer < n_layers - 1 else z)
        z = acts.pop()
        lse = torch.logsumexp(z, dim=2, keepdim=True)
        yb = self.y.expand(B, -1)[:, :, None]
        ce = (lse[:, :, 0] - z.gather(2, yb)[:, :, 0]).mean(1)
        delta = torch.exp(z - lse)
        delta.scatter_add_(2, yb, torch.full_like(yb, -1.0, dtype=delta.dtype))
        delta /= N
        grads = []
        for layer in range(n_layers - 1, -1, -1):
            a = acts[layer]
            dW = torch.einsum("bno,ni->boi", delta, a) if layer == 0 else torch.bmm(delta.transpose(1, 2), a)
            grads.append(delta.sum(1))
            grads.append(dW.reshape(B, -1))
            if layer > 0:
                delta = torch.bmm(delta, Ws[layer]) * (1 - a * a)
        g = torch.cat(grads[::-1], dim=1)
        if self._select is not None:
            g = g @ self._select.T
        return ce + self.regulariser(x), g + 2 * self.lam * self._reg * x

    def torch_hessian(self, x: torch.Tensor) -> torch.Tensor:
        """Exact Hessian [P, P] at ``x[P]`` in torch: closed form for one hidden layer (several
        times faster than automatic differentiation), automatic differentiation for deeper networks.

        With u = [x, 1], h~ = [h, 1], s = 1 - h^2, residual r = (p - onehot)/N and
        A = (diag p - p p^T)/N per sample, the blocks over (W1|b1)[j, a] and (W2|b2)[c, k] are
          H11 = sum_n (W2^T A W2)_jk s_j s_k u_a u_b + [j = k] (r W2)_j (-2 h_j s_j) u_a u_b
          H12 = sum_n (A W2)_cj s_j u_a h~_k + [k = j] r_c s_j u_a
          H22 = sum_n A_cd h~_k h~_l
        """
        if len(self.sizes) != 3:
            return super().hessian(x)
        I, Hd, C = self.sizes
        (W1, b1), (W2, b2) = self.layout.layers(self.full(x.detach()[None])[0])
        N = self.X.shape[0]
        ones = torch.ones(N, 1, dtype=DTYPE, device=self.device)
        h = torch.tanh(self.X @ W1.T + b1)
        s = 1 - h * h
        u, ht = torch.cat([self.X, ones], 1), torch.cat([h, ones], 1)
        p = torch.softmax(h @ W2.T + b2, dim=1)
        r = p.clone()
        r[torch.arange(N, device=self.device), self.y] -= 1.0
        r /= N
        A = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]) / N
        AW = A @ W2  # [N, C, H]
        M = W2.T @ AW * (s[:, :, None] * s[:, None, :])  # [N, H, H]
        M = M + torch.diag_embed(-2 * (r @ W2) * h * s)
        H11 = torch.einsum("njk,na,nb->jakb", M, u, u).reshape(Hd * (I + 1), -1)
        H12 = torch.einsum("ncj,na,nk->jack", AW * s[:, None, :], u, ht)
        diag = torch.arange(Hd, device=self.device)
        H12[diag, :, :, diag] += torch.einsum("nc,nj,na->jac", r, s, u)
        H12 = H12.reshape(Hd * (I + 1), -1)
        H22 = torch.einsum("ncd,nk,nl->ckdl", A, ht, ht).reshape(C * (Hd + 1), -1)
        blocks = torch.cat([torch.cat([H11, H12], 1), torch.cat([H12.T, H22], 1)], 0)
        j, a = np.divmod(np.arange(Hd * (I + 1)), I + 1)  # block order -> layout W1, b1, W2, b2
        c, k = np.divmod(np.arange(C * (Hd + 1)), Hd + 1)
        w1, bias1, w2, bias2 = (int(o) for pair in zip(self.layout.weight_offsets, self.layout.bias_offsets) for o in pair)
        order = np.concatenate([np.where(a < I, w1 + j * I + a, bias1 + j), np.where(k < Hd, w2 + c * Hd + k, bias2 + c)])
        Hf = torch.empty_like(blocks)
        idx = torch.as_tensor(order, device=self.device)
        Hf[idx[:, None], idx[None, :]] = blocks
        Hf = Hf + torch.diag(2 * self.lam * self.full(self._reg[None])[0])
        if self._select is not None:
            Hf = Hf[self.free][:, self.free]
        return 0.5 * (Hf + Hf.T)

    def log_proba(self, x: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Log class probabilities [B, N, O] of parameter vectors ``x[B, P]`` on inputs ``X[N, I]``."""
        return torch.log_softmax(self.logits(x, X), dim=2)
