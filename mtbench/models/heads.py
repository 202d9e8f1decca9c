"""Task heads: small networks mapping pooled backbone features to a task's outputs."""

from __future__ import annotations

from typing import Sequence

from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLPHead(nn.Module):
    """``[Linear -> activation -> Dropout] * len(hidden) -> Linear``.

    Parameters
    ----------
    in_features, out_features:
        Input width (the backbone's ``num_features``) and output width (``task.num_outputs``).
    hidden:
        Widths of the hidden layers; ``()`` gives a single linear layer.
    dropout:
        Dropout after each hidden layer, and before the first layer if ``input_dropout``.
    activation:
        ``relu``, ``gelu``, ``silu`` or ``tanh``.
    init:
        ``None`` (PyTorch default) or ``"xavier_uniform"``; ``bias_init`` then sets every bias.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        activation: str = "relu",
        input_dropout: bool = False,
        init: str | None = None,
        bias_init: float = 0.0,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        layers: list[nn.Module] = []
        if input_dropout and dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = self.in_features
        for width in hidden:
            layers += [nn.Linear(prev, int(width)), _ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = int(width)
        layers.append(nn.Linear(prev, self.out_features))
        self.net = nn.Sequential(*layers)
        if init == "xavier_uniform":
            for m in self.net.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.constant_(m.bias, bias_init)
        elif init is not None:
            raise ValueError(f"Unknown init {init!r}; use None or 'xavier_uniform'.")

    def forward(self, x):
        return self.net(x)
