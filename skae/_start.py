"""The weights training starts from: a candidate that ``fit`` must beat.

From ``init="pca"`` the starting weights *are* PCA's solution, and a drop-in
for PCA should never end worse than it. :class:`Start` keeps those weights
and their error when training begins, and :meth:`Start.settle` decides at the
end whether the trained weights replace them:

* with a validation split (``early_stopping=True``), the starting weights are
  early stopping's first candidate (:meth:`~skae.callbacks.Stopper.start_from`:
  a trained epoch must beat their validation loss by a relative margin); and
  a trained epoch that early stopping restores must also be better on the
  validation rows in a one-sided paired t-test at level :data:`ALPHA` over
  the rows' errors, else the starting weights come back. On a handful of
  validation rows (a one-class problem of 40 rows holds out 4) an epoch can
  beat PCA on those rows by chance and be worse on new ones;
* without one, the starting weights come back when the final reconstruction
  error on the training rows is higher than theirs.

Only when training minimizes the reconstruction error alone
(:func:`competes`): a penalty (``l1``, ``activity_l1``, ``contractive``, a
KL term) or ``noise`` trades reconstruction for something else, which the
reconstruction error of the starting weights cannot judge.
"""

import math

import torch
from scipy.special import stdtr

from ._devices import float64_device, move
from ._inference import scaled_error
from .callbacks import _copy_state

#: Level of the one-sided paired t-test a trained model must pass on the
#: validation rows to replace the starting weights.
ALPHA = 0.05


def row_losses(net, rows):
    """Each row's reconstruction loss (mean over features), float64, eval mode."""
    module, losses = net.module_, []
    reconstruction = net.criterion_.terms[0][0]  # always the first term
    module.eval()
    with torch.no_grad():
        for X, _ in net.get_iterator(rows, training=False):
            values = reconstruction.values(X, module.parts(X))
            # float64 where the device has it (MPS has not: the CPU).
            host = float64_device(values.device)
            losses.append(move(values, host, torch.float64).mean(dim=1))
    return torch.cat(losses).cpu()


def better(trained, start, alpha=ALPHA):
    """Whether per-row losses ``trained`` are lower than ``start``'s, significantly.

    One-sided paired t-test of the mean difference at level ``alpha``; with
    fewer than two rows there is no evidence either way, and the answer is no.
    """
    diff = (trained - start).numpy()
    n = len(diff)
    if n < 2 or not diff.mean() < 0:
        return False
    spread = diff.std(ddof=1)
    if spread == 0:
        return True
    t = diff.mean() / (spread / math.sqrt(n))
    return bool(stdtr(n - 1, t) < alpha)  # Student's t distribution function


def competes(net):
    """Whether the starting weights compete with the trained ones.

    They do when the objective is the reconstruction term alone and the
    encoder reads clean rows: then both are judged by what training
    minimizes.
    """
    return net.criterion_.names == ["reconstruction"] and net.module_.corruption is None


class Start:
    """The starting weights of a ``fit`` call and what they score.

    Parameters
    ----------
    net : AutoencoderNet
        Initialized, its callbacks notified that training begins.
    data : Rows
        The training rows of the call.
    validate : bool
        Whether the call holds out validation rows.
    """

    def __init__(self, net, data, validate):
        self.competes = competes(net)
        self.validate = validate
        if validate:
            # The rows fit_loop validates on: the split is drawn once per
            # dataset. Their mean loss is the validation loss an epoch records.
            _, self.rows = net.get_split_datasets(data)
        self.state = self.losses = self.score = None
        if not self.competes:
            return  # nothing to score: the trained weights stay
        self.state = _copy_state(net.module_)
        if validate:
            self.losses = row_losses(net, self.rows)
            self.score = float(self.losses.mean())
        else:
            self.score = scaled_error(net.module_, data)

    def settle(self, net, data, stopper):
        """Put the starting weights back if training did not beat them.

        Returns ``(error, kept)``: the reconstruction error of the weights
        kept (validation loss, or training error without a split) and
        whether they are the starting ones. When the starting weights do
        not compete (:func:`competes`), the trained ones stay.
        """
        if not self.competes:
            if self.validate:
                return float(row_losses(net, self.rows).mean()), False
            return scaled_error(net.module_, data), False
        if self.validate:
            if stopper.best_epoch_ == 0:
                return self.score, True
            if better(row_losses(net, self.rows), self.losses):
                return stopper.best_score_, False
        else:
            error = scaled_error(net.module_, data)
            if error <= self.score:
                return error, False
        net.module_.load_state_dict(self.state)
        if self.validate:
            stopper.keep_start(net, self.state, self.score)
        if net.verbose:
            print(
                "Keeping the weights training started from: training did not "
                "beat them on the "
                + ("validation rows." if self.validate else "training rows.")
            )
        return self.score, True
