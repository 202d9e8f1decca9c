"""Task heads: small networks mapping pooled backbone features to a task's outputs."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from mtbench.registry import Registry

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


HEADS = Registry("head")


def register_head(name: str, **meta):
    """Decorator: ``factory(in_features, out_features, **kwargs) -> nn.Module`` under ``name``."""
    return HEADS.register(name, **meta)


def list_heads() -> list[str]:
    return HEADS.names()


@register_head("mlp", description="MLPHead (hidden=, dropout=, activation=, init=)")
def _mlp(in_features: int, out_features: int, **kwargs) -> nn.Module:
    return MLPHead(in_features, out_features, **kwargs)


@register_head("linear", description="one Linear(F, C)")
def _linear(in_features: int, out_features: int, **_: object) -> nn.Module:
    return MLPHead(in_features, out_features)


@register_head("H1", description="Ruffini et al. 2024: F-128-32-C MLP, Xavier-uniform weights, biases 0.01")
def _h1(in_features: int, out_features: int, dropout: float = 0.5, bias_init: float = 0.01) -> nn.Module:
    return MLPHead(in_features, out_features, hidden=(128, 32), dropout=dropout, init="xavier_uniform", bias_init=bias_init)


@register_head("H2", description="Ruffini et al. 2024: Linear(F,F)-Dropout-Linear(F,F)-ReLU-Dropout-Linear(F,C)")
def _h2(in_features: int, out_features: int, dropout: float = 0.5, **_: object) -> nn.Module:
    f = int(in_features)
    return nn.Sequential(
        nn.Linear(f, f), nn.Dropout(dropout), nn.Linear(f, f), nn.ReLU(), nn.Dropout(dropout), nn.Linear(f, int(out_features))
    )


@register_head("dropout_linear", description="Dropout-Linear(F,C): Ruffini et al. 2024's single-task tau1 head")
def _dropout_linear(in_features: int, out_features: int, dropout: float = 0.5, **_: object) -> nn.Module:
    return MLPHead(in_features, out_features, dropout=dropout, input_dropout=True)


@register_head("relu_dropout_linear", description="ReLU-Dropout-Linear(F,C): Ruffini et al. 2024's Brixia class heads")
def _relu_dropout_linear(in_features: int, out_features: int, dropout: float = 0.5, **_: object) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(int(in_features), int(out_features)))


HEAD_NAMES = ("linear", "H1", "H2")  # the paper's heads (kept for callers that list them)


def create_head(name: str, in_features: int, out_features: int, **kwargs) -> nn.Module:
    """A registered head by name (see :func:`list_heads`); the named heads of Ruffini et al. (2024):

    ``"linear"``  one ``Linear(F, C)``.
    ``"H1"``      ``Linear(F,128)-ReLU-Dropout-Linear(128,32)-ReLU-Dropout-Linear(32,C)``, Xavier-uniform
                  weights and every bias ``bias_init`` (0.01 in the paper's code): an :class:`MLPHead`.
    ``"H2"``      ``Linear(F,F)-Dropout-Linear(F,F)-ReLU-Dropout-Linear(F,C)`` (no activation after the
                  first layer, as the paper describes it); PyTorch's default initialisation.

    ``"dropout_linear"``       ``Dropout-Linear(F,C)``, the original's single-task prognosis head.
    ``"relu_dropout_linear"``  ``ReLU-Dropout-Linear(F,C)``, the original's Brixia class heads (global, per lung);
                  both keep PyTorch's default initialisation, as the original.

    ``dropout`` defaults to 0.5 for these heads (the paper's value). Unknown names raise ``ValueError``
    with the close matches.
    """
    return HEADS.lookup(name)(in_features, out_features, **kwargs)
