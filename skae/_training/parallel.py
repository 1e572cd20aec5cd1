"""Data-parallel training over the processes of an ``accelerate.Accelerator``.

Every process (rank) holds the whole model and the same rows; each global
mini-batch of ``batch_size`` rows, cut from the same shuffled order on every
rank, is split between the ranks (``tensor_split``: pieces differ by at most
one row). Each rank computes the loss of its piece; the gradients are
averaged over the ranks after ``backward`` (one all-reduce of all gradients
flattened together), with each rank's loss weighted by ``world * n_local /
n_global`` first, so that the averaged gradient is the gradient of the whole
batch's mean loss, as in one process. The losses recorded in ``history_`` are
reduced the same way: every rank records the same numbers and so takes the
same decisions (early stopping, restarts). Validation and inference run on
every rank, on all their rows.

Why not skorch's ``AccelerateMixin`` (and ``Accelerator.prepare``)? The mixin
replaces the net's ``initialize`` and ``train_step_single`` without calling
the subclass's, wraps the module in ``DistributedDataParallel`` (whose
gradient synchronization is skipped whenever the inner module is called
directly, as skae's objective terms, gradient monitor and inference do),
unwraps it after the first training call (so a later ``partial_fit`` would
train unsynchronized), only shards a ``torch.utils.data.DataLoader`` (so each
rank would train on every row) and gathers evaluation outputs across ranks.
Keeping the module unwrapped and averaging the gradients here does what
``DistributedDataParallel`` does, with none of those traps; accelerate still
starts the processes, picks each rank's device and provides the collectives.
"""

import torch


class DataParallel:
    """The ranks of ``accelerator`` seen by the training loop.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
    """

    def __init__(self, accelerator):
        self.accelerator = accelerator

    @property
    def rank(self):
        return self.accelerator.process_index

    @property
    def world(self):
        return self.accelerator.num_processes

    def piece(self, rows):
        """This rank's share of a global batch's ``rows``."""
        return rows.tensor_split(self.world)[self.rank]

    @staticmethod
    def weight(n_local, n_global, world):
        """Factor on a rank's mean loss: gradient averaging then gives the mean."""
        return world * n_local / n_global

    def reduce_batch(self, values, n_local, n_global):
        """Batch means over all ranks of the local means ``values`` (a dict)."""
        from accelerate.utils import reduce

        names = list(values)
        local = torch.stack([values[k].detach().double() for k in names])
        total = reduce(local * (n_local / n_global), reduction="sum")
        return dict(zip(names, total.unbind()))

    def average_gradients(self, module):
        """Average the gradients of ``module`` over the ranks, in place."""
        from accelerate.utils import reduce

        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))

    def broadcast_buffers(self, module):
        """Give every rank the main process's buffers (batch-norm statistics)."""
        from accelerate.utils import broadcast

        for buffer in module.buffers():
            buffer.copy_(broadcast(buffer.clone(), from_process=0))

    def same_seed(self, seed):
        """The main process's ``seed``, on every rank."""
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([seed], from_process=0)[0]


def data_parallel(accelerator):
    """A :class:`DataParallel` for ``accelerator``, or None in one process."""
    if accelerator is None or accelerator.num_processes == 1:
        return None
    return DataParallel(accelerator)
