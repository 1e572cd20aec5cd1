"""Data sets shared by ``pca_time.py`` and ``downstream.py``.

scikit-learn's bundled data sets and generated ones only: no network. Every
split is ``train_test_split(..., test_size=0.25, random_state=0)``.
"""

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

#: Name -> scikit-learn loader of the bundled data sets used here.
BUNDLED = {
    "digits": datasets.load_digits,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
    "iris": datasets.load_iris,
}


def make_low_rank(n_samples=500, n_features=10, seed=0):
    """Gaussian rows with standard deviations ``3 * 2 ** (-i / 2)`` along
    random orthogonal axes, plus an offset: PCA is the best linear code and
    no code does better in expectation (there is nothing to learn)."""
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    std = 3.0 * 2.0 ** (-np.arange(n_features) / 2)
    return (rng.standard_normal((n_samples, n_features)) * std) @ axes.T + (
        rng.standard_normal(n_features)
    )


def make_roll(n_samples, n_features=128, seed=0):
    """A float32 swiss roll (2-D) lifted into ``n_features`` by random sines.

    ``X = sin(S W + b) + 0.05 * noise``, ``S`` the standardized 3-D swiss roll
    of :func:`~sklearn.datasets.make_swiss_roll`, ``W`` Gaussian: a manifold
    no setting of skae was chosen on.
    """
    S, _ = datasets.make_swiss_roll(n_samples, noise=0.05, random_state=seed)
    S = (S - S.mean(axis=0)) / S.std(axis=0)
    rng = np.random.default_rng(seed + 100)
    W = rng.standard_normal((3, n_features))
    b = rng.uniform(0, 2 * np.pi, n_features)
    X = np.sin(S @ W + b) + 0.05 * rng.standard_normal((n_samples, n_features))
    return X.astype(np.float32)


def load(name, manifold_rows=20_000):
    """Return ``(X, y)``; ``y`` is None for generated data without labels.

    ``"manifold"`` is speed.py's 256-feature set (float64); the sets named
    ``*_f32`` are float32 and have 20,000 training rows, drawn with other
    seeds: no setting of skae was chosen on them.
    """
    if name == "manifold":
        from speed import make_manifold  # the 256-feature set of speed.py

        return make_manifold(manifold_rows), None
    if name == "manifold_f32":
        from speed import make_manifold

        rows = manifold_rows * 4 // 3  # 3/4 of them train
        return make_manifold(rows, seed=1).astype(np.float32), None
    if name == "roll_f32":
        return make_roll(manifold_rows * 4 // 3), None
    if name == "low_rank":
        return make_low_rank(), None
    X, y = BUNDLED[name](return_X_y=True)
    return X.astype(np.float64), y


def split(name, manifold_rows=20_000):
    """Return ``X_train, X_test, y_train, y_test`` (``y_*`` None if no labels)."""
    X, y = load(name, manifold_rows)
    if y is None:
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        return X_train, X_test, None, None
    return train_test_split(X, y, test_size=0.25, random_state=0)
