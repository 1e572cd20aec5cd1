"""Data-parallel training over the processes of an ``accelerate.Accelerator``.

Every rank holds the whole model and rows and trains on its piece of each
global mini-batch; its loss is weighted by ``world * n_local / n_global`` and
the gradients averaged (one all-reduce), giving one process's gradient. The
recorded losses are reduced the same way, so every rank takes the same
decisions. skorch's ``AccelerateMixin`` is not used: see the
:ref:`User Guide <distributed>`.
"""

import torch


class DataParallel:
    """The ranks of an ``accelerate.Accelerator`` seen by the training loop."""

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
