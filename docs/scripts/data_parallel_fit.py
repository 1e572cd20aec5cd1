"""Data-parallel training of an AutoencoderTransformer with Hugging Face Accelerate.

On a machine with several GPUs, one process per GPU::

    accelerate launch --multi_gpu --num_processes 4 data_parallel_fit.py

On CPU processes (a machine without GPUs, or to try it out)::

    accelerate launch --multi_gpu --num_processes 2 --main_process_ip 127.0.0.1 \\
        data_parallel_fit.py

(``accelerate launch --cpu --num_processes 2`` starts one process only.) Run
as ``python data_parallel_fit.py`` it trains in one process. Every process runs
this whole script: it loads the same data, calls ``fit`` with it and ends with
the same model; each mini-batch of ``batch_size`` rows is split between the
processes. ``--rows`` sets the size of the generated data set.
"""

import argparse

import numpy as np
from accelerate import Accelerator

from skae import AutoencoderTransformer, load, save


def make_data(n_rows, n_features=256, n_latent=8, seed=0):
    """float32 rows near a smooth 8-D manifold in 256-D (the same on every rank)."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_rows, n_latent))
    W1 = rng.standard_normal((n_latent, 64)) / np.sqrt(n_latent)
    W2 = rng.standard_normal((64, n_features)) / 8.0
    X = np.tanh(latent @ W1) @ W2
    return (X + 0.01 * rng.standard_normal(X.shape)).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default="data_parallel_model")
    args = parser.parse_args()

    accelerator = Accelerator()  # one GPU per process, or CPU processes
    X = make_data(args.rows)
    ae = AutoencoderTransformer(
        n_components=8,
        batch_size=1024,  # the global batch: split between the processes
        max_iter=args.epochs,
        random_state=0,
        accelerator=accelerator,
    )
    ae.fit(X)
    accelerator.print(
        f"{accelerator.num_processes} process(es) on {accelerator.device.type}: "
        f"{ae.n_iter_} epochs, final training loss {ae.loss_curve_[-1]:.4g}"
    )
    save(ae, args.out)  # every process calls it; the main process writes
    Z = load(args.out).transform(X[:1000])  # every process can read it now
    accelerator.print(f"codes of the first rows: {Z.shape}, {Z.dtype}")


if __name__ == "__main__":
    main()
