"""Training hyperparameters: one dataclass, filled by the command line or by hand."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass
class TrainConfig:
    data: str = "letters"  # where samples come from: letters[:system or :FONTS_DIR], idx:DIR, emnist-letters:DIR, folder:DIR, npz:FILE
    train_samples: int | None = None  # None: 120,000 generated letters, or every sample of a file source
    test_samples: int | None = None  # None: 10,000 generated letters, or every held-out sample of a file
    backend: str | None = None  # None: $XPNET_BACKEND if set, else auto (cupy with a GPU, else numpy)
    device: str | None = None  # None: $XPNET_DEVICE if set, else the backend's default
    dtype: str = "float32"  # float32 is twice as fast as float64 and accurate enough to train
    tf32: bool | None = None  # None: $XPNET_TF32; TF32 GPU products are faster but keep ~3 digits
    cuda_graphs: bool | None = None  # replay each full batch's step as one recorded CUDA graph; None: on a GPU
    threads: int | None = None  # CPU threads each batch is split across; None: every core for conv layers
    # on numpy (train/threads.py)
    seed: int = 0  # one seed for weights, shuffling and generated data: same seed, same run
    epochs: int | None = None  # passes over the training set; None: 24 for the letters' batches, 16 shifted, else 12
    batch_size: int | None = None  # samples per gradient step; None: 256 for 20,000 letters or more (momentum), else 64
    lr: float | str | None = None  # learning rate alpha; "auto": the course's recipe; None: see with_data_defaults
    hidden: list[int | str] | None = None  # hidden layers: sizes, or conv32x3, pool2...; None: sized to the data

    image: list[int] | None = None  # one sample as (channels, height, width) for conv layers; None: square, 1 channel
    activation: str = "relu"  # hidden non-linearity: relu trains deep nets fastest
    loss: str | None = None  # None: cross_entropy for class labels, quadratic for float targets (regression)
    optimizer: str = "momentum"  # sgd, momentum (0.9) or adam
    schedule: str = "cosine"  # the rate per epoch: cosine (falling to 0 by the last), constant (the course's) or step
    warmup: int = 0  # epochs climbing to the rate first
    weight_decay: float | None = None  # L2's lambda on every weight matrix; None: 0.0001 for letters, else 0
    shift: int | None = None  # move training pictures up to this many pixels, anew each epoch; None: 2 for letters
    small_letters: float | None = None  # share of the letters' training pictures drawn 7-13 px tall; None: the
    # generator's 0.25 (letters_render.Augment)
    init: str = "he"  # weight init matched to relu
    patience: int | None = None  # stop after this many epochs without validation improvement
    scale: str | None = None  # none, standard, minmax or pixels; None: train/scaling.py DEFAULT
    val_fraction: float | None = None  # share of the training data held back to validate on (stratified)
    out: str | None = None  # run folder; None makes runs/<data>-<time>


PRESETS = {
    # The default job: a ReLU network with cross-entropy and momentum, sized to the data
    # (default_hidden), and a cosine schedule, which reads 4-5 points more of the letters'
    # unseen hands and designs than a constant rate (docs/letters.md).
    "default": {},
    # The network as the course builds it: sigmoid neurons everywhere, the quadratic loss
    # J = mean((h - y)^2) / 2 and plain minibatch gradient descent, no weight decay.
    "course": {"activation": "sigmoid", "loss": "quadratic", "optimizer": "sgd", "init": "normal",
               "lr": 3.0, "batch_size": 16, "hidden": [128, 64], "epochs": 15, "schedule": "constant",
               "weight_decay": 0.0},
    # A small convolutional network for pictures: three rounds of 3x3 filters and 2x2 max
    # pooling find strokes wherever they are, then a dense layer reads the letter. Adam, as
    # convolutions train poorly with one rate for every weight; 0.002 read more than 0.001 and
    # 0.003. The third round read 0.5 points more than two, dropout before the dense layer the
    # handwriting fonts 0.4 more, and L2's lambda 0.0001 (the letters' own) 0.2-0.4 points more
    # in all on two seeds (0.0003 less); 18 epochs or batches of 128 gained nothing. 40% of its
    # training letters drawn small, not a quarter, read the held-out small letters over 95% on
    # three seeds of three (a quarter: one) and the same in all (60% read less of every group).
    # On 2 cores it trains the letters in under 10 minutes, as each batch is split across them
    # (train/threads.py; docs/cnn.md).
    "cnn": {"hidden": ["conv16x3", "pool2", "conv32x3", "pool2", "conv64x3", "pool2", "dropout0.25", 512],
            "optimizer": "adam", "lr": 0.002,
            "batch_size": 64, "epochs": 15, "weight_decay": 0.0001, "small_letters": 0.4},
}
LETTERS_ONLY = {"small_letters"}  # a preset's settings that other data leaves out, having no such pictures


LETTERS_SHIFT = 2  # pixels: the letters' training pictures read about 2 points better moved (train/augment.py)
EPOCHS, SHIFTED_EPOCHS = 12, 16  # a shifted picture is new each epoch, so more passes keep teaching
BATCH = 64  # samples per step where nothing else is known: small batches generalise well
# The letters' dense network with momentum: batches of 256 at a rate four times momentum's 0.05
# (the rate grows with the batch, as Goyal et al. 2017 scale it), over 24 epochs: 1.5 times the
# samples of 16 epochs at 64 in 3/8 of the steps, each a product BLAS runs faster (docs/letters.md).
LETTERS_BATCH, LETTERS_LR, LETTERS_EPOCHS = 256, 0.2, 24
LETTERS_WEIGHT_DECAY = 0.0001  # L2's lambda for the letters (docs/letters.md)
WIDE_FROM = 20_000  # training samples from which the default network is 512-256 wide, and the letters' batches 256


def is_letters(spec) -> bool:
    """Whether a data spec names the built-in letters, as the loader reads it (`Letters:DIR` too)."""
    return str(spec).strip().partition(":")[0].lower() == "letters"


def dense_only(hidden) -> bool:
    """Whether hidden layers given as sizes (or None, sized to the data) make a dense network."""
    return hidden is None or all(isinstance(h, int) for h in hidden)


def with_data_defaults(config: TrainConfig) -> TrainConfig:
    """The settings the data decides where none was given. The built-in letters are framed
    with room to move, so they are shifted; other data is trained as it comes unless asked
    (--shift), since not every input is a picture. Shifted runs take 16 epochs: 12 left the
    letters' held-out groups 1-3 points short (docs/letters.md). A letters network also decays
    its weights a little unless its preset says otherwise: the default dense one read 0.2-0.5
    points more of their unseen hands and designs on two seeds; other data has not been
    measured with it, so it gets none. Trained with momentum and no batch size given, the letters
    take larger batches at a higher rate for more epochs (LETTERS_BATCH): with more written
    letters, 0.8 points more on average over four seeds, 3 more of the unseen writers
    (docs/letters.md). A batch size given keeps the optimizer's rate and the usual epochs (a
    run's config.json names its batch, so a resumed run keeps what it had), and so do a quick
    run of fewer than WIDE_FROM letters, which batches of 256 would give too few steps, and a
    network with conv layers, for which the larger batches were not measured."""
    letters = is_letters(config.data)
    shift = config.shift
    if shift is None:
        shift = LETTERS_SHIFT if letters else 0
    enough = config.train_samples is None or config.train_samples >= WIDE_FROM
    big_batches = (letters and dense_only(config.hidden) and enough and config.optimizer == "momentum"
                   and config.batch_size is None)  # conv layers: big batches unmeasured
    batch_size = LETTERS_BATCH if big_batches else (BATCH if config.batch_size is None else config.batch_size)
    lr = LETTERS_LR if big_batches and config.lr is None else config.lr
    epochs = config.epochs
    if epochs is None:
        epochs = LETTERS_EPOCHS if big_batches else SHIFTED_EPOCHS if shift else EPOCHS
    weight_decay = config.weight_decay
    if weight_decay is None:
        weight_decay = LETTERS_WEIGHT_DECAY if letters else 0.0
    return replace(config, shift=shift, epochs=epochs, weight_decay=weight_decay, batch_size=batch_size, lr=lr)


def default_hidden(n_train: int) -> list[int]:
    """The hidden layers when none are given: 512-256 for 20,000 training samples or more (the
    letters' unseen hands and designs read 1-2 points better than with 256-128, docs/letters.md),
    256-128 below, where the wider network costs twice the time for nothing (docs/your-data.md)."""
    return [512, 256] if n_train >= WIDE_FROM else [256, 128]


# Settings a resumed run may change: how long, where, and how it reports. The rest would
# make it a different run.
RESUMABLE = {"epochs", "patience", "backend", "device", "tf32", "cuda_graphs", "threads"}
COUNTS = ("epochs", "batch_size", "patience", "train_samples", "test_samples", "threads")  # positive integers (or None)
