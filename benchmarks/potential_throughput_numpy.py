"""Plain NumPy loss and gradient of a one-hidden-layer tanh MLP (one vector): the baseline."""

import numpy as np


def numpy_value_and_grad(w, X, y, sizes, lam):
    """One vector, one hidden layer, plain NumPy backpropagation."""
    I, H, O = sizes
    W1 = w[: H * I].reshape(H, I)
    b1 = w[H * I : H * I + H]
    W2 = w[H * I + H : H * I + H + O * H].reshape(O, H)
    b2 = w[H * I + H + O * H :]
    h = np.tanh(X @ W1.T + b1)
    z = h @ W2.T + b2
    m = z.max(1, keepdims=True)
    p = np.exp(z - m)
    s = p.sum(1, keepdims=True)
    N = len(y)
    f = float((np.log(s[:, 0]) + m[:, 0] - z[np.arange(N), y]).mean()) + lam * (w @ w)
    d = p / s
    d[np.arange(N), y] -= 1
    d /= N
    dh = (d @ W2) * (1 - h * h)
    g = np.concatenate([(dh.T @ X).ravel(), dh.sum(0), (d.T @ h).ravel(), d.sum(0)])
    return f, g + 2 * lam * w
