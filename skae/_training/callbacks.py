"""skae's private skorch callbacks: the objective's terms, penalties, clipping."""

import sys

import torch
from skorch.callbacks import Callback


class Penalties(Callback):
    """Divide the penalties on the weights by the training rows, as sklearn's MLP.

    Sets ``alpha``'s weight decay and the objective's ``n_train`` (for ``l1``).
    """

    def __init__(self, alpha=0.0):
        self.alpha = alpha

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        n_train = len(dataset_train)
        net.criterion_.n_train = n_train
        for group in net.optimizer_.param_groups:
            if group.get("decay"):
                group["weight_decay"] = self.alpha / n_train


class ObjectiveTerms(Callback):
    """Record each term of the objective per batch, as ``train_<name>``.

    And ``valid_<name>`` when several terms are validated. Read after skorch
    read the loss, which waited for the device: no extra synchronization.
    """

    def on_batch_end(self, net, training=False, **kwargs):
        terms = net.terms_
        # Interned keys: one string for all batches, not one per batch.
        if not training:
            # valid_loss is the reconstruction's when it is the only term.
            if len(terms) > 1:
                for name, value in terms.items():
                    net.history.record_batch(sys.intern(f"valid_{name}"), value.item())
            return
        if len(terms) == 1:
            (name,) = terms
            value = net.history[-1]["batches"][-1]["train_loss"]
            net.history.record_batch(sys.intern(f"train_{name}"), value)
            return
        for name, value in terms.items():
            net.history.record_batch(sys.intern(f"train_{name}"), value.item())


class ValueClipping(Callback):
    """Clip every gradient element into ``[-clip_value, clip_value]``."""

    def __init__(self, clip_value=None):
        self.clip_value = clip_value

    def on_grad_computed(self, net, named_parameters, **kwargs):
        if self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(
                [p for _, p in named_parameters], self.clip_value
            )
