"""The network a run's config describes, and the checks that refuse a bad config before
minutes are spent making data: a misspelt name, and, for the letters, whose shape is known
before they are drawn (1x28x28, 26 classes), a network or picture shape they cannot take."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.model import Network
from xpnet.model.activations import ModelError, check_activation
from xpnet.model.init import check_init
from xpnet.model.layers import image_shape, parse_layers
from xpnet.model.losses import check_loss
from xpnet.train.augment import MAX_SHIFT
from xpnet.train.config import TrainConfig, dense_only
from xpnet.train.data import DataSet
from xpnet.train.data.spec import check_sample_counts, check_small_letters, parse_spec
from xpnet.train.optimizers import check_optimizer, check_weight_decay
from xpnet.train.scaling import check_scale
from xpnet.train.schedules import check_schedule

LETTERS_IMAGE, LETTERS_CLASSES = (28, 28), 26  # the built-in letters, known before they are drawn
LETTERS_FEATURES = math.prod(LETTERS_IMAGE)


def build_network(config: TrainConfig, data: DataSet, backend) -> Network:
    """Input width from the data, hidden sizes from the config, one output per class.

    Float targets are regression: the output layer stays linear, since a value can be any
    number (a ReLU or sigmoid output would cap it, or stop learning below zero)."""
    regression = data.classes is None
    n_out = data.y_train.reshape(len(data.y_train), -1).shape[1] if regression else len(data.classes)
    output = "identity" if regression else None
    n_in = data.X_train.shape[1]
    # A dense network reads the pixels flat, but a given shape that misfits is a mistake for any network.
    image = image_shape(n_in, config.image) if config.image is not None else None
    if image is not None and data.image_shape and image != (1, *data.image_shape):  # the same count, scrambled
        own = "x".join(map(str, (1, *data.image_shape)))
        raise ModelError(f"--image {'x'.join(map(str, image))} does not fit the data's pictures, which are {own}: "
                         f"leave --image out, or give {own}")
    if dense_only(config.hidden):  # dense layers alone: the course's network
        return Network.from_sizes([n_in, *config.hidden, n_out], backend, activation=config.activation,
                                  loss=config.loss, output=output, init=config.init, seed=config.seed)
    words = parse_layers(config.hidden)
    takes_images = words[0]["kind"] in ("conv", "maxpool", "avgpool")
    if takes_images and image is None and math.isqrt(n_in) ** 2 != n_in:  # the command line's way to say it
        raise ModelError(f"{config.hidden[0]} takes pictures, but samples of {n_in} features are not square "
                         "one-channel ones: give their shape with --image CxHxW, such as --image 3x32x32")
    shape = (image or image_shape(n_in)) if takes_images else (n_in,)
    return Network.from_layers(config.hidden, shape, n_out, backend, activation=config.activation,
                               loss=config.loss, output=output, init=config.init, seed=config.seed)


def check_config(config: TrainConfig) -> None:
    """Catch a misspelt name before minutes are spent making data."""
    check_activation(config.activation)
    if config.loss is not None:
        check_loss(config.loss)
    check_init(config.init)
    check_optimizer(config.optimizer)
    check_schedule(config.schedule, config.warmup)
    check_weight_decay(config.weight_decay)
    if config.hidden is not None:
        parse_layers(config.hidden)
    check_sample_counts(config.data, config.train_samples, config.test_samples)
    check_scale(config.scale)
    if config.shift is not None and not 0 <= config.shift <= MAX_SHIFT:
        raise XpnetError(f"--shift {config.shift} is out of range: give 0 (none) to {MAX_SHIFT} pixels")
    scheme = parse_spec(config.data)[0]
    check_small_letters(config.small_letters, scheme)
    if scheme == "letters" and (config.hidden is not None or config.image is not None):
        check_fits_letters(config)


def check_fits_letters(config: TrainConfig) -> None:
    """Build the network on a stand-in of the letters' shape, so a kernel or pool larger than
    its input, or an --image that is not 1x28x28, is refused before the letters are drawn."""
    stand_in = DataSet(np.zeros((1, LETTERS_FEATURES), np.float32), np.zeros(1, np.int64), None, None,
                       tuple(str(k) for k in range(LETTERS_CLASSES)), LETTERS_IMAGE)
    hidden = config.hidden if config.hidden is not None else [16]  # the default is sized to the data: dense
    build_network(replace(config, hidden=hidden, loss="cross_entropy"), stand_in, resolve_backend("numpy"))
