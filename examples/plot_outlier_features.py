"""
==================================================
Which features make a row an outlier
==================================================

:meth:`~skae.AutoencoderTransformer.score_samples` says *that* a row is badly
reconstructed: minus its mean squared reconstruction error. With
``per_feature=True``, :meth:`~skae.AutoencoderTransformer.reconstruction_error`
says *where*: the squared error of every feature, in the input's units.

The autoencoders here learn the 13 chemical measurements of the wines in
:func:`sklearn.datasets.load_wine`. Two wines are then tampered with: one
gets an impossible magnesium content, the other the lowest proline content
and the highest color intensity of another kind of wine (each value seen in
the data, the combination not). The anomaly score flags both; the per-feature
errors name the features, best with a model trained with masking noise.
"""

# %%
# Two autoencoders of the wines
# -----------------------------
# The measurements have very different units (proline is in the hundreds,
# hue around 1), so ``scaling="standard"`` gives every feature the same
# weight in training, and the per-feature errors below are divided by each
# feature's variance (``scale_ ** 2``) to compare features on one scale.
#
# A plain autoencoder passes a wrong value on to its code, which then
# distorts the reconstruction of other features too. With
# ``noise="mask"``, training hides a fifth of the entries of every row and
# asks for them back: the model learns to rebuild each feature from the
# others, so a single wrong value stays where it is.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine

from skae import AutoencoderTransformer

wine = load_wine(as_frame=True)
X, kind = wine.data, wine.target
params = dict(
    n_components=3,
    hidden_layer_sizes=(32,),
    scaling="standard",
    batch_size=32,
    max_iter=150,
    random_state=0,
)
plain = AutoencoderTransformer(**params).fit(X)
masked = AutoencoderTransformer(noise="mask", noise_level=0.2, **params).fit(X)

# %%
# Two tampered wines
# ------------------
rows = X.iloc[[10, 20]].copy()
rows.iloc[0, rows.columns.get_loc("magnesium")] = 300.0  # the data top at 162
# The third kind of wine: its lowest proline, its highest color intensity.
other = X[kind == 2]
rows.iloc[1, rows.columns.get_loc("proline")] = other["proline"].min()
rows.iloc[1, rows.columns.get_loc("color_intensity")] = other["color_intensity"].max()
rows.index = ["too much magnesium", "proline and color of another kind"]

# ``score_samples`` is minus the mean squared error in the input's units, in
# which proline (in the hundreds) dwarfs every other feature. Dividing each
# feature's error by its variance first gives a score in which every feature
# counts alike.


def relative_errors(model, rows):
    return model.reconstruction_error(rows, per_feature=True) / model.scale_**2


scores = relative_errors(masked, X).mean(axis=1)
for name, score in zip(rows.index, relative_errors(masked, rows).mean(axis=1)):
    share = np.mean(scores < score)
    print(f"{name}: relative error {score:5.2f}, above {100 * share:.0f} % of wines")

# %%
# The per-feature errors
# ----------------------
# Each bar is one feature's squared reconstruction error divided by that
# feature's variance: 1 is an error as large as the feature's typical spread
# (log scale). Bars: the model trained with masking noise; dots: the plain
# model; grey: the median over the untampered wines.
typical = np.median(relative_errors(masked, X), axis=0)
fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
positions = np.arange(X.shape[1])
pairs = zip(relative_errors(masked, rows), relative_errors(plain, rows), strict=True)
for ax, name, (row, row_plain) in zip(axes, rows.index, pairs, strict=True):
    ax.bar(positions, row, color="C3", label=f"{name} (noise='mask')")
    ax.plot(positions, row_plain, "ko", ms=4, label="same row, plain model")
    ax.bar(positions, typical, color="0.6", width=0.4, label="median wine")
    ax.set_yscale("log")
    ax.set_ylabel("error / variance")
    ax.legend(
        loc="lower left", bbox_to_anchor=(0, 1), ncol=3, fontsize="small", frameon=False
    )
    top, top_plain = X.columns[np.argmax(row)], X.columns[np.argmax(row_plain)]
    print(f"{name}: largest error in {top!r} (plain model: {top_plain!r})")
axes[-1].set_xticks(positions, X.columns, rotation=60, ha="right")
fig.suptitle("Per-feature reconstruction error of two tampered wines")
fig.tight_layout()
