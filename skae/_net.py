"""The private skorch net that trains the autoencoder, and batched inference.

The estimator talks to this module through four functions: :func:`build_net`,
:func:`train`, :func:`map_batches` and :func:`inference_module`.

Speed: training batches are slices of one preloaded tensor (:class:`Rows`,
:class:`BatchIterator`), fed through skorch's ``get_dataset`` /
``get_iterator`` / ``train_split`` hooks, so skorch's callbacks, history and
schedules keep working without the per-row ``Dataset`` + ``collate`` path.
"""

import contextlib
import copy
import math
import mmap
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, GradientNormClipping, ProgressBar

from ._modules import Autoencoder
from ._scaling import chunks
from ._schedules import make_scheduler
from .callbacks import (
    GradientMonitor,
    LearningRateMonitor,
    TrainingGuard,
    ValueClipping,
    _Diverged,
)
from .exceptions import TrainingDivergedError

#: Factor applied to the learning rate after a divergence.
RESTART_LR_FACTOR = 0.1

#: Largest absolute standardized value accepted for training (float32 squares
#: of larger values overflow).
MAX_TRAINING_VALUE = 1e18


class Rows(torch.utils.data.Dataset):
    """Rows of a 2-D source, standardized on the fly when needed.

    ``data`` is either a float32 tensor already standardized and on the
    training device (the fast path) or a :class:`LazyRows` reading batches
    from an array such as ``np.memmap``. ``index`` selects a subset (a
    train/validation split) without copying.
    """

    def __init__(self, data, index=None):
        self.data = data
        self.index = index

    def __len__(self):
        return len(self.data) if self.index is None else len(self.index)

    def take(self, positions):
        """Return the batch at ``positions`` (a LongTensor of positions)."""
        rows = positions if self.index is None else self.index[positions]
        if isinstance(self.data, torch.Tensor):
            return self.data.index_select(0, rows)
        return self.data.take(rows)

    def __getitem__(self, i):
        return self.take(torch.as_tensor([i]))[0]


class LazyRows:
    """Standardize and convert rows of a numpy array batch by batch.

    Used for ``np.memmap`` input so that the file is never copied whole.
    """

    def __init__(self, X, transform, device):
        self.X = X
        self.transform = transform
        self.device = device

    def __len__(self):
        return self.X.shape[0]

    def take(self, rows):
        rows = np.sort(rows.cpu().numpy())  # sorted reads are sequential on disk
        batch = self.transform(self.X[rows]).astype(np.float32, copy=False)
        return torch.from_numpy(batch).to(self.device)


class BatchIterator:
    """Yield ``(X_batch, None)`` mini-batches of a :class:`Rows` dataset.

    The reconstruction target is the batch itself, so no ``y`` is built. With
    ``shuffle``, each epoch draws one permutation from ``generator`` and slices
    it. A trailing batch of one row is merged into the previous batch (batch
    normalization cannot train on a single row).
    """

    def __init__(self, dataset, batch_size, shuffle, generator):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return len(self._bounds())

    def _bounds(self):
        n, size = len(self.dataset), self.batch_size
        starts = list(range(0, n, size))
        if len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        return list(zip(starts, starts[1:] + [n]))

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
        else:
            order = torch.arange(n)
        data = self.dataset.data
        if isinstance(data, torch.Tensor):
            order = order.to(data.device)
        for start, stop in self._bounds():
            yield self.dataset.take(order[start:stop]), None


class HoldoutSplit:
    """skorch ``train_split``: hold out a random ``fraction`` of the rows.

    The split is drawn once per dataset and reused when training resumes (after a
    restart), so validation rows never leak into training.
    """

    def __init__(self, fraction, generator):
        self.fraction = fraction
        self.generator = generator
        self._cache = None

    def __call__(self, dataset, y=None, **fit_params):
        if self._cache is not None and self._cache[0] is dataset:
            return self._cache[1]
        self._cache = (dataset, self._split(dataset))
        return self._cache[1]

    def __getstate__(self):
        return {**self.__dict__, "_cache": None}

    def _split(self, dataset):
        n = len(dataset)
        n_valid = max(1, math.ceil(self.fraction * n))
        order = torch.randperm(n, generator=self.generator)
        valid, train = order[:n_valid], order[n_valid:]
        base = dataset.index
        if base is not None:
            valid, train = base[valid], base[train]
        if isinstance(dataset.data, torch.Tensor):
            valid, train = valid.to(dataset.data.device), train.to(dataset.data.device)
        return Rows(dataset.data, train), Rows(dataset.data, valid)


class AutoencoderNet(NeuralNet):
    """skorch net whose loss is the reconstruction error plus named penalties.

    Extension points used: ``get_dataset``, ``get_iterator``, ``train_split``
    and ``get_loss`` (skorch's documented hooks). The loss is the sum of the
    terms returned by :meth:`loss_terms`; add a term by overriding it.

    Parameters
    ----------
    alpha : float
        Weight of ``0.5 * sum(W ** 2) / n_train`` over all weight matrices
        (L2), where ``n_train`` is the number of training rows.
    l1 : float
        Weight of ``sum(abs(W)) / n_train`` over all weight matrices (L1).
    seed : int
        Seeds the generator that shuffles batches.
    """

    def __init__(self, *args, alpha=0.0, l1=0.0, seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.l1 = l1
        self.seed = seed

    def initialize(self):
        super().initialize()
        self.generator_ = torch.Generator().manual_seed(self.seed)
        self.weights_ = self.module_.weights()
        return self

    def __setstate__(self, state):
        super().__setstate__(state)
        # The cached weight list must point at the unpickled module's tensors.
        if "module_" in self.__dict__:
            self.weights_ = self.module_.weights()

    def get_dataset(self, X, y=None):
        return X if isinstance(X, Rows) else Rows(X)

    def get_iterator(self, dataset, training=False):
        if training:
            # The penalties are divided by the number of training rows.
            self.n_train_ = len(dataset)
        return BatchIterator(
            dataset, self.batch_size, shuffle=training, generator=self.generator_
        )

    def loss_terms(self, X_pred, X, training):
        """Return the named terms of the loss, as a dict of scalar tensors."""
        terms = {"reconstruction": self.criterion_(X_pred, X)}
        if training and self.alpha:
            norms = torch.stack(torch._foreach_norm(self.weights_))
            terms["l2"] = 0.5 * self.alpha / self.n_train_ * norms.square().sum()
        if training and self.l1:
            norms = torch.stack(torch._foreach_norm(self.weights_, 1))
            terms["l1"] = self.l1 / self.n_train_ * norms.sum()
        return terms

    def penalty_gradients(self, weights):
        """Return the gradients of the penalty terms w.r.t. ``weights``, or None.

        Closed forms of the derivatives of :meth:`loss_terms`' ``l2`` and ``l1``
        terms; :class:`~skae.callbacks.GradientMonitor` subtracts them to
        measure the reconstruction loss's own gradient.
        """
        if not (self.alpha or self.l1):
            return None
        grads = [torch.zeros_like(w) for w in weights]
        if self.alpha:
            torch._foreach_add_(grads, weights, alpha=self.alpha / self.n_train_)
        if self.l1:
            signs = torch._foreach_sign(weights)
            torch._foreach_add_(grads, signs, alpha=self.l1 / self.n_train_)
        return grads

    def train_step_single(self, batch, **fit_params):
        """Forward, loss and backward for one batch whose target is itself.

        Unlike skorch's default, the modules switch to training mode only when
        they are not in it already (``Module.train`` walks every submodule, a
        cost paid per batch otherwise), and the batch goes to the module as it
        is: it is already a tensor on the right device.
        """
        if not self.module_.training:
            self._set_training(True)
        Xi, _ = batch
        X_pred = self.module_(Xi)
        loss = self.get_loss(X_pred, None, X=Xi, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": X_pred}

    def validation_step(self, batch, **fit_params):
        """Loss of one validation batch, in eval mode, without gradients."""
        if self.module_.training:
            self._set_training(False)
        Xi, _ = batch
        with torch.no_grad():
            X_pred = self.module_(Xi)
            loss = self.get_loss(X_pred, None, X=Xi, training=False)
        return {"loss": loss, "y_pred": X_pred}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        terms = self.loss_terms(y_pred, X, training)
        loss = terms.pop("reconstruction")
        for term in terms.values():
            loss = loss + term
        return loss


@dataclass
class TrainReport:
    """What happened during :func:`train`."""

    stopped_early: bool = False
    interrupted: bool = False
    restarts: list = field(default_factory=list)


def _optimizer(solver, momentum, alpha, device):
    """Return the optimizer class and its settings for ``solver``."""
    fused = {"fused": True}
    if device.type == "cpu" and tuple(map(int, torch.__version__.split(".")[:2])) < (
        2,
        4,
    ):
        fused = {"foreach": True}
    if solver == "adam":
        return torch.optim.Adam, fused
    if solver == "adamw":
        # Decoupled weight decay replaces the L2 term of the loss.
        return torch.optim.AdamW, {**fused, "weight_decay": alpha}
    if solver == "sgd":
        return torch.optim.SGD, {
            **fused,
            "momentum": momentum,
            "nesterov": momentum > 0,
        }
    return torch.optim.RMSprop, {"foreach": True, "momentum": momentum}


def build_net(params, n_features, n_components, seed, device, validate):
    """Return an uninitialized :class:`AutoencoderNet` for the estimator's params.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params()``.
    n_features, n_components : int
    seed : int
        Seeds batch shuffling and the validation split.
    device : torch.device
    validate : bool
        Hold out ``validation_fraction`` and stop early on the validation loss.
    """
    p = params
    monitor = "valid_loss" if validate else "train_loss"
    split_gen = torch.Generator().manual_seed(seed + 1)
    optimizer, opt_kwargs = _optimizer(p["solver"], p["momentum"], p["alpha"], device)
    monitor_cb = GradientMonitor()
    callbacks = [
        ("lr", LearningRateMonitor()),
        ("gradient_monitor", monitor_cb),
    ]
    if p["max_grad_norm"] is not None:
        callbacks.append(
            ("grad_norm_clipping", GradientNormClipping(p["max_grad_norm"]))
        )
    if p["clip_value"] is not None:
        callbacks.append(("grad_value_clipping", ValueClipping(p["clip_value"])))
    scheduler = make_scheduler(
        p["lr_schedule"], p["lr_schedule_params"], p["max_iter"], monitor
    )
    if scheduler is not None:
        callbacks.append(("lr_scheduler", scheduler))
    callbacks.append(("guard", TrainingGuard(monitor=monitor)))
    if p["n_iter_no_change"] is not None:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor=monitor,
                    patience=p["n_iter_no_change"],
                    threshold=p["tol"],
                    threshold_mode="abs",
                    sink=print,
                ),
            )
        )
    if p["verbose"] >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    callbacks.extend(p["callbacks"] or [])
    net = AutoencoderNet(
        module=Autoencoder,
        module__n_features=n_features,
        module__n_components=n_components,
        module__hidden_layer_sizes=tuple(p["hidden_layer_sizes"]),
        module__activation=p["activation"],
        module__output_activation=p["output_activation"],
        module__normalization=p["normalization"],
        module__dropout=p["dropout"],
        module__residual=p["residual"],
        module__init=p["init"],
        criterion=torch.nn.MSELoss,
        optimizer=optimizer,
        lr=p["learning_rate_init"],
        max_epochs=p["max_iter"],
        batch_size=p["batch_size"],
        train_split=HoldoutSplit(p["validation_fraction"], split_gen)
        if validate
        else None,
        callbacks=callbacks,
        callbacks__print_log__keys_ignored=[
            "grad_norms",
            "train_batch_count",
            "valid_batch_count",
        ],
        alpha=0.0 if p["solver"] == "adamw" else p["alpha"],
        l1=p["l1"],
        seed=seed,
        verbose=int(p["verbose"] > 0),
        device=str(device),
        **{f"optimizer__{k}": v for k, v in opt_kwargs.items()},
    )
    return net


def _callback(net, name):
    return dict(net.callbacks_).get(name)


def train(net, data, epochs, *, max_restarts):
    """Run ``epochs`` epochs of ``net`` on ``data`` (a :class:`Rows` or tensor).

    Divergence (a NaN or infinite loss) rolls the module back to the last good
    epoch, multiplies the learning rate by :data:`RESTART_LR_FACTOR`, rebuilds
    the optimizer and continues, at most ``max_restarts`` times. A real
    KeyboardInterrupt stops training and restores the best weights. With early
    stopping the best weights (by the monitored loss) are restored too.

    Returns
    -------
    TrainReport
    """
    snapshot = _snapshot(net)
    try:
        return _train(net, data, epochs, max_restarts)
    except Exception:
        _restore(net, snapshot)
        raise


def _snapshot(net):
    return (
        copy.deepcopy(net.module_.state_dict()),
        copy.deepcopy(net.optimizer_.state_dict()),
        len(net.history),
    )


def _restore(net, snapshot):
    module_state, optimizer_state, n_epochs = snapshot
    net.module_.load_state_dict(module_state)
    net.initialize_optimizer()
    net.optimizer_.load_state_dict(optimizer_state)
    del net.history[n_epochs:]


def _train(net, data, epochs, max_restarts):
    report = TrainReport()
    guard = _callback(net, "guard")
    stopper = _callback(net, "early_stopping")
    target = len(net.history) + epochs
    while len(net.history) < target:
        net.max_epochs = target - len(net.history)
        try:
            net.partial_fit(data)
        except _Diverged as signal:
            if len(report.restarts) >= max_restarts:
                raise TrainingDivergedError(
                    f"Training diverged: the training loss was {signal.loss} at "
                    f"epoch {signal.epoch} after {len(report.restarts)} restart(s) "
                    f"(max_restarts={max_restarts}), the last with learning rate "
                    f"{net.optimizer_.param_groups[0]['lr']:.3g}. Try a lower "
                    "learning_rate_init, max_grad_norm=1.0, normalization='batch', "
                    "or solver='adam'."
                ) from None
            _drop_partial_epoch(net)
            net.module_.load_state_dict(guard.safe_state_)
            lr = net.optimizer_.param_groups[0]["lr"] * RESTART_LR_FACTOR
            base = net.lr * RESTART_LR_FACTOR ** (len(report.restarts) + 1)
            net.initialize_optimizer()
            for group in net.optimizer_.param_groups:
                group["lr"] = lr
                group["initial_lr"] = base
            report.restarts.append((signal.epoch, signal.loss, lr))
            continue
        if stopper is not None and stopper.misses_ >= stopper.patience:
            report.stopped_early = True
        elif len(net.history) < target or "train_loss" not in net.history[-1]:
            report.interrupted = True
            _drop_partial_epoch(net)
        break
    if report.interrupted or (report.stopped_early and net.train_split is not None):
        net.module_.load_state_dict(guard.best_state_)
    return report


def _drop_partial_epoch(net):
    if len(net.history) and "train_loss" not in net.history[-1]:
        del net.history[-1]


def inference_fn(module, part, dtype):
    """Return a function running ``part`` of ``module`` in eval mode in ``dtype``.

    ``part`` is ``"encoder"``, ``"decoder"`` or ``"autoencoder"``. Float64
    input runs on a float64 copy of the module, so results do not depend on
    how rows are batched (float32 matmuls differ by ~1e-7 between batchings).
    """
    dtype = torch.float64 if dtype == np.float64 else torch.float32
    if next(module.parameters()).dtype != dtype:
        module = copy.deepcopy(module).to(dtype)
    module.eval()
    return module if part == "autoencoder" else getattr(module, part)


def infer(module, part, X, *, mean, scale, batch_size, device):
    """Run ``part`` of ``module`` on ``X`` in input units, batch by batch.

    Standardization ``(X - mean) / scale`` and its inverse are applied to each
    batch on the device, in the compute dtype (``X``'s: float32 or float64).
    The output is preallocated with ``X``'s dtype (float64 for ``"score"``)
    and runs under
    ``torch.inference_mode``: memory beyond input and output is
    O(batch_size).

    Parameters
    ----------
    part : {"encoder", "decoder", "score"}
        ``"encoder"``: codes of ``X``; ``"decoder"``: reconstructions (input
        units) of codes ``X``; ``"score"``: minus each row's mean squared
        reconstruction error in input units.

    Returns
    -------
    out : ndarray of shape (n_samples, n_out) or (n_samples,)
    """
    dtype = X.dtype
    compute = torch.float64 if dtype == np.float64 else torch.float32
    fn = inference_fn(module, "autoencoder" if part == "score" else part, dtype)
    mean = torch.as_tensor(mean, dtype=compute, device=device)
    scale = torch.as_tensor(scale, dtype=compute, device=device)
    if part == "encoder":
        n_out = module.encoder.out.out_features

        def step(x):
            return fn((x - mean) / scale)

    elif part == "decoder":
        n_out = module.decoder.out.out_features

        def step(z):
            return torch.addcmul(mean, fn(z), scale)

    else:
        n_out = None

        scale64 = scale.double()

        def step(x):
            x = (x - mean) / scale
            # float64 from here: squared errors of large-valued data overflow
            # float32 (values of 1e20 already do).
            error = (fn(x) - x).double().mul_(scale64)
            return error.square_().mean(dim=1).neg_()

    n = X.shape[0]
    out = np.empty((n, n_out) if n_out else n, dtype=dtype if n_out else np.float64)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            # Contiguous and writable: torch.from_numpy warns on read-only arrays.
            batch = np.require(X[start : start + batch_size], requirements=["C", "W"])
            result = step(torch.from_numpy(batch).to(device))
            out[start : start + batch_size] = result.cpu().numpy()
    return out


def prepare_rows(X, transform, device):
    """Return a :class:`Rows` dataset over ``X`` standardized by ``transform``.

    An ``np.memmap`` is read batch by batch (never copied whole); any other
    array is standardized chunk by chunk into one float32 tensor on ``device``.
    """
    if _file_backed(X):
        return Rows(LazyRows(X, transform, device))
    data = torch.empty(X.shape, dtype=torch.float32)
    with np.errstate(over="ignore"):  # overflow is reported by check_finite_rows
        for rows in chunks(*X.shape):
            chunk = np.asarray(transform(X[rows]), dtype=np.float32)
            data[rows] = torch.from_numpy(chunk)
    return Rows(data.to(device))


def _file_backed(X):
    """Return True if ``X`` is (a view of) a memory-mapped file."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


@contextlib.contextmanager
def num_threads(n):
    """Set torch's intra-op threads to ``n`` inside the block (None: unchanged)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded(seed, device):
    """Seed torch's RNG of ``device`` inside the block, restoring it afterwards.

    Weight initialization and dropout draw from the global generator; forking
    it keeps the caller's random state untouched.
    """
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed(seed)
        yield


def resolve_device(device):
    """Return the torch.device for the estimator's ``device`` parameter."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    return device


def check_finite_rows(rows):
    """Raise ValueError if the standardized training data is too large to train.

    The network trains in float32; squared errors of values beyond ~1e18
    overflow it, so such data is refused before training starts.
    """
    data = rows.data
    if isinstance(data, torch.Tensor) and data.numel():
        peak = data.abs().max().item()
        if not peak <= MAX_TRAINING_VALUE:
            raise ValueError(
                f"X has values up to {peak:.3g} after scaling; the network trains "
                f"in float32 and needs them below {MAX_TRAINING_VALUE:.0e}. Use "
                "scaling='global' or 'standard', or rescale X."
            )


def warn_diagnostics(found):
    """Emit the warnings found by :meth:`GradientMonitor.diagnose`."""
    for category, message in found:
        warnings.warn(message, category, stacklevel=7)
