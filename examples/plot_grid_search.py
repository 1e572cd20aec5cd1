"""
=====================================================
Choosing the architecture by unsupervised grid search
=====================================================

:meth:`AutoencoderTransformer.score <skae.AutoencoderTransformer.score>` is
minus the mean squared reconstruction error, so
:class:`~sklearn.model_selection.GridSearchCV` can choose hyperparameters
without any labels: it keeps the setting that reconstructs the held-out folds
best. Here a :class:`~sklearn.pipeline.Pipeline` drops the pixels that never
change and feeds the rest to the autoencoder; the search crosses the network's
width and depth (``hidden_layer_sizes``) with its L2 penalty (``alpha``).
"""

# %%
# The pipeline and the grid
# -------------------------
# Every parameter of :class:`~skae.AutoencoderTransformer` is a plain value,
# so it is addressed as ``<step>__<parameter>`` like any scikit-learn
# parameter. ``fit`` is called without ``y``; the pipeline's ``score`` is the
# autoencoder's score on the pixels the first step kept.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.feature_selection import VarianceThreshold
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skae import AutoencoderTransformer

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

pipeline = Pipeline(
    [
        ("drop_constant", VarianceThreshold()),
        (
            "ae",
            AutoencoderTransformer(n_components=8, n_iter_no_change=5, random_state=0),
        ),
    ]
)
param_grid = {
    "ae__hidden_layer_sizes": [(64,), (256, 128), (256, 128, 64)],
    "ae__alpha": [0.0, 1.0, 10.0],
}

# %%
# The search
# ----------
# Three folds, nine settings: 27 fits plus the refit of the best setting on
# all training digits. Pass ``n_jobs=-1`` to use every core: joblib's workers
# then each get their share of threads, so torch does not oversubscribe the
# machine.
search = GridSearchCV(pipeline, param_grid, cv=3)
search.fit(X_train)

# %%
# The ``cv_results_`` table, best first. ``mean_test_score`` is minus the
# cross-validated reconstruction error in squared pixel units.
results = pd.DataFrame(search.cv_results_)
columns = {
    "param_ae__hidden_layer_sizes": "hidden_layer_sizes",
    "param_ae__alpha": "alpha",
    "mean_test_score": "mean_test_score",
    "std_test_score": "std_test_score",
    "mean_fit_time": "mean_fit_time (s)",
    "rank_test_score": "rank",
}
table = results[list(columns)].rename(columns=columns).sort_values("rank")
print(table.to_string(index=False, float_format="{:.3f}".format))

# %%
# The reconstruction error of every setting. ``alpha`` is the L2 penalty
# divided by the number of training rows (as in scikit-learn's MLP), so its
# scale does not depend on the data set's size: too little lets the network
# fit the training digits' noise, too much shrinks the weights until the
# reconstructions blur.
sizes = [str(h) for h in param_grid["ae__hidden_layer_sizes"]]
alphas = param_grid["ae__alpha"]
error = (
    -results.pivot_table(
        index=results["param_ae__hidden_layer_sizes"].astype(str),
        columns="param_ae__alpha",
        values="mean_test_score",
    )
    .reindex(index=sizes, columns=alphas)
    .to_numpy()
)

fig, ax = plt.subplots(figsize=(5.5, 4))
image = ax.imshow(error, cmap="viridis")
ax.set_xticks(range(len(alphas)), [str(a) for a in alphas])
ax.set_yticks(range(len(sizes)), sizes)
ax.set_xlabel("alpha")
ax.set_ylabel("hidden_layer_sizes")
best = np.unravel_index(np.argmin(error), error.shape)
for (i, j), value in np.ndenumerate(error):
    color = "k" if image.norm(value) > 0.6 else "w"  # readable on the colormap
    weight = "bold" if (i, j) == best else "normal"
    ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=color, weight=weight)
fig.colorbar(image, ax=ax, label="cross-validated MSE")
ax.set_title("Grid search over architecture and alpha")
fig.tight_layout()
plt.show()

# %%
# The best setting
# ----------------
# ``best_estimator_`` is the whole pipeline refitted on all training digits.
# Its score on the untouched test split confirms the choice.
print("best parameters:", search.best_params_)
print(f"cross-validated MSE: {-search.best_score_:.3f}")
print(f"test MSE:            {-search.score(X_test):.3f}")
