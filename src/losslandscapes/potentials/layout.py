"""The parameter layout of a dense MLP: the one owner of sizes, offsets and the free mask.

Full layout (every artefact uses it): layer by layer from the input, each layer's weights
(out x in, row-major) then its biases. Frozen weights (locality, docs/methods.md §5) are stored as 0
and are not part of the free-parameter vector that every optimiser sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def n_parameters(sizes) -> int:
    """Weights and biases of a fully connected network with layer sizes ``sizes``."""
    return int(sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:])))


def free_mask(sizes, masks: list[np.ndarray] | None) -> np.ndarray:
    """Boolean [P_full]: True for free parameters; ``masks[l]`` [out, in] keeps layer l's weights
    (None: all weights free). Biases are always free."""
    parts = []
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = np.ones((n_out, n_in), dtype=bool) if masks is None else np.asarray(masks[layer], bool)
        parts += [w.ravel(), np.ones(n_out, dtype=bool)]
    return np.concatenate(parts)


@dataclass(frozen=True)
class Layout:
    """Sizes ``(inputs, hidden..., outputs)`` and the free mask [P_full] (None: all free)."""

    sizes: tuple[int, ...]
    free: np.ndarray = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        free = np.ones(n_parameters(self.sizes), bool) if self.free is None else np.asarray(self.free, bool)
        if free.shape != (n_parameters(self.sizes),):
            raise ValueError(f"free mask has {free.size} entries; layer sizes {self.sizes} have {n_parameters(self.sizes)} parameters")
        object.__setattr__(self, "free", free)

    @property
    def P_full(self) -> int:
        return int(self.free.size)

    @property
    def P(self) -> int:
        """Free parameters."""
        return int(self.free.sum())

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def weight_offsets(self) -> np.ndarray:
        """[n_layers] start of each layer's weights in the full layout."""
        sizes = np.array([o * i + o for i, o in zip(self.sizes[:-1], self.sizes[1:])])
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    @property
    def bias_offsets(self) -> np.ndarray:
        """[n_layers] start of each layer's biases in the full layout."""
        return self.weight_offsets + np.array([o * i for i, o in zip(self.sizes[:-1], self.sizes[1:])], np.int64)

    @property
    def free_index(self) -> np.ndarray:
        """[P] full-layout index of each free parameter."""
        return np.flatnonzero(self.free).astype(np.int64)

    def bias_mask(self) -> np.ndarray:
        """Boolean [P_full]: True for biases."""
        out = np.zeros(self.P_full, bool)
        for b, o in zip(self.bias_offsets, self.sizes[1:]):
            out[b: b + o] = True
        return out

    def to_full(self, x: np.ndarray) -> np.ndarray:
        """[..., P_full] with frozen weights 0 from free parameters [..., P]."""
        x = np.asarray(x)
        out = np.zeros(x.shape[:-1] + (self.P_full,))
        out[..., self.free] = x
        return out

    def to_free(self, w: np.ndarray) -> np.ndarray:
        """[..., P] free parameters from the full layout [..., P_full]."""
        return np.asarray(w)[..., self.free]

    def layers(self, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W [..., out, in], b [..., out]) views of each layer of full-layout vectors ``w[..., P_full]``."""
        lead = w.shape[:-1]
        return [(w[..., o: o + n_out * n_in].reshape(*lead, n_out, n_in), w[..., b: b + n_out])
                for o, b, n_in, n_out in zip(self.weight_offsets, self.bias_offsets, self.sizes[:-1], self.sizes[1:])]
