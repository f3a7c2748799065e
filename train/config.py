"""Training hyperparameters: one dataclass, filled by the command line or by hand."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    data: str = "letters"  # where samples come from: letters[:system], idx:DIR, emnist-letters:DIR, folder:DIR, npz:FILE
    train_samples: int | None = None  # None: 60,000 generated letters, or every sample of a file source
    test_samples: int | None = None  # None: 10,000 generated letters, or every held-out sample of a file
    backend: str | None = None  # None: $XPNET_BACKEND if set, else auto (cupy with a GPU, else numpy)
    device: str | None = None  # None: $XPNET_DEVICE if set, else the backend's default
    dtype: str = "float32"  # float32 is twice as fast as float64 and accurate enough to train
    tf32: bool | None = None  # None: $XPNET_TF32; TF32 GPU products are faster but keep ~3 digits
    cuda_graphs: bool | None = None  # replay each full batch's step as one recorded CUDA graph; None: on a GPU
    seed: int = 0  # one seed for weights, shuffling and generated data: same seed, same run
    epochs: int = 12  # passes over the training set
    batch_size: int = 64  # samples per gradient step; small batches generalise well on letters
    lr: float | str = 0.05  # learning rate alpha; "auto" runs the course's x10 / /10 recipe
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # hidden layer sizes
    activation: str = "relu"  # hidden non-linearity: relu trains deep nets fastest
    loss: str = "cross_entropy"  # softmax cross-entropy: the right loss for classes
    optimizer: str = "momentum"  # sgd, momentum (0.9) or adam
    init: str = "he"  # weight init matched to relu
    patience: int | None = None  # stop after this many epochs without validation improvement
    out: str | None = None  # run folder; None makes runs/<data>-<time>


PRESETS = {
    # The default job: a ReLU network with cross-entropy and momentum.
    "default": {},
    # The network as the course builds it: sigmoid neurons everywhere, the quadratic loss
    # J = mean((h - y)^2) / 2 and plain minibatch gradient descent.
    "course": {"activation": "sigmoid", "loss": "quadratic", "optimizer": "sgd", "init": "normal",
               "lr": 3.0, "batch_size": 16, "hidden": [128, 64], "epochs": 15},
}
